"""`load()` and `unload()`: an LLM created from a path loads nothing until used, frees its
model on `unload()` and loads it again on the next call; a child process loads once and
unloads at teardown."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Callable, Dict

import pytest

from distilabel_llm import TextGenerationTask
from distilabel_llm.llm import LlamaCppLLM, ProcessLLM, TransformersLLM

pytestmark = [pytest.mark.timeout(120), pytest.mark.slow]

ROWS = [{"input": "Say something about tea."}, {"input": "And about coffee?"}]
GREEDY = {"temperature": 0.0, "max_new_tokens": 8}


def _transformers(models: Any) -> Any:
    pytest.importorskip("transformers")
    return TransformersLLM(str(models.hf_path), generation_kwargs=GREEDY)


def _llama_cpp(models: Any) -> Any:
    pytest.importorskip("llama_cpp")
    return LlamaCppLLM(models.gguf_path, n_ctx=512, n_threads=1, generation_kwargs=GREEDY)


BACKENDS: Dict[str, Callable[[Any], Any]] = {
    "transformers": _transformers,
    "llama.cpp": _llama_cpp,
}


def _texts(llm: Any) -> list:
    return [row[0]["raw_output"] for row in llm.generate(ROWS)]


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_a_model_given_by_path_loads_on_first_use_and_again_after_unload(
    tiny_models: Any, backend: str
) -> None:
    llm = BACKENDS[backend](tiny_models)
    assert llm.model is None  # constructing loads nothing
    assert isinstance(llm.task, TextGenerationTask)  # no task: prompts as given
    assert llm.model_name.endswith(("hf", "tiny-llama.gguf"))
    first = _texts(llm)
    assert llm.model is not None
    llm.unload()
    assert llm.model is None
    llm.unload()  # idempotent
    assert _texts(llm) == first  # loaded again, the same greedy texts
    llm.close()
    assert llm.model is None


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_load_moves_the_load_up_front(tiny_models: Any, backend: str) -> None:
    llm = BACKENDS[backend](tiny_models)
    llm.load()
    model = llm.model
    assert model is not None
    llm.load()  # idempotent
    assert llm.model is model
    assert all(_texts(llm))
    llm.close()


def test_an_unloaded_model_that_was_given_loaded_cannot_come_back(tiny_models: Any) -> None:
    pytest.importorskip("transformers")
    loaded = TransformersLLM.from_pretrained(str(tiny_models.hf_path), TextGenerationTask())
    llm = TransformersLLM(loaded.model, loaded.tokenizer, TextGenerationTask())
    assert llm.model is loaded.model  # from_pretrained still loads at once
    llm.unload()
    with pytest.raises(RuntimeError, match=r"cannot load it again: create it with the model's"):
        llm.generate(ROWS)


def test_a_child_process_loads_once_and_unloads_at_teardown(tmp_path: Path) -> None:
    from recording_llm import RecordingLLM

    log = tmp_path / "log"
    llm = ProcessLLM(TextGenerationTask(), functools.partial(RecordingLLM, log=str(log)))
    for _ in range(3):
        assert llm.generate(ROWS).result(timeout=30)[0][0]["raw_output"]
    llm.teardown()
    assert log.read_text().split() == ["load", "unload"]
