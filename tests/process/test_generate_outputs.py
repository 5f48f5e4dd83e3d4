"""`generate_outputs`, distilabel 1.x's call: conversations in, `generations` and `statistics`
out, the same on every backend and through a child process and a pool."""

from __future__ import annotations

import functools
from typing import Any, List

import pytest

from distilabel_llm import TextGenerationTask
from distilabel_llm.llm import LlamaCppLLM, LLMPool, ProcessLLM, TransformersLLM
from distilabel_llm.testing import FakeLLM

pytestmark = [pytest.mark.timeout(120)]

CONVERSATIONS: List[Any] = [
    [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "Hello?"}],
    [{"role": "user", "content": "What is tea?"}],
    "A plain prompt, sent as it is.",
]
SAMPLING = {"temperature": 1.0, "seed": 5, "max_new_tokens": 8}


def _llama_cpp(task: Any, *, path: str) -> Any:
    return LlamaCppLLM(path, task, n_ctx=512, n_threads=1)


def _check(results: List[Any], n: int) -> None:
    assert len(results) == len(CONVERSATIONS)
    for result in results:
        assert len(result["generations"]) == n and all(result["generations"])
        assert result["errors"] == [None] * n
        assert len(result["statistics"]["output_tokens"]) == n


def test_a_conversation_needs_no_task_and_skips_it() -> None:
    results = FakeLLM(TextGenerationTask()).generate_outputs(CONVERSATIONS, num_generations=2)
    _check(results, 2)
    with pytest.raises(TypeError, match="Input 1 must be a conversation"):
        FakeLLM(TextGenerationTask()).generate_outputs(["ok", [{"role": "user"}]])


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["llama.cpp", "transformers"])
def test_local_backends_render_conversations_with_their_chat_templates(
    tiny_models: Any, backend: str
) -> None:
    if backend == "llama.cpp":
        pytest.importorskip("llama_cpp")
        llm = LlamaCppLLM(tiny_models.gguf_path, n_ctx=512, n_threads=1)
    else:
        pytest.importorskip("transformers")
        llm = TransformersLLM(str(tiny_models.hf_path))
    results = llm.generate_outputs(CONVERSATIONS, num_generations=2, **SAMPLING)
    _check(results, 2)
    assert all(len(set(result["generations"])) == 2 for result in results)  # seeds per slot
    llm.close()


@pytest.mark.slow
def test_through_a_child_and_a_pool_of_replicas(tiny_models: Any) -> None:
    pytest.importorskip("llama_cpp")
    task = TextGenerationTask()
    load = functools.partial(_llama_cpp, path=str(tiny_models.gguf_path))
    alone = LlamaCppLLM(tiny_models.gguf_path, n_ctx=512, n_threads=1)
    expected = alone.generate_outputs(CONVERSATIONS, num_generations=4, **SAMPLING)
    with ProcessLLM(task, load) as child:
        assert child.generate_outputs(CONVERSATIONS, num_generations=4, **SAMPLING) == expected
    with LLMPool.from_replicas(task, load, replicas=2, strategy="spread") as pool:
        pooled = pool.generate_outputs(CONVERSATIONS, num_generations=4, **SAMPLING)
    assert [r["generations"] for r in pooled] == [r["generations"] for r in expected]
