"""Structured output on the tiny random-weight llama: every output is valid by construction,
through both local backends, in-process, in a child process and in a pool; unconstrained, the
same model gives essentially none."""

from __future__ import annotations

import functools
import json
from typing import Any, List

import pytest

from distilabel_llm import TextGenerationTask
from distilabel_llm.errors import GenerationSettingsError
from distilabel_llm.llm import LLMPool, ProcessLLM
from distilabel_llm.pipeline import Pipeline
from distilabel_llm.tasks import UltraFeedbackTask

jsonschema = pytest.importorskip("jsonschema")
pytest.importorskip("llguidance", reason="the `structured` extra is not installed")

pytestmark = [pytest.mark.timeout(120), pytest.mark.slow]

SCHEMA = {
    "type": "object",
    "properties": {
        "score": {"type": "integer", "minimum": 1, "maximum": 10},
        "mood": {"type": "string", "enum": ["happy", "sad", "calm"]},
    },
    "required": ["score", "mood"],
    "additionalProperties": False,
}
ROWS = [{"input": f"How do you feel about the number {i}?"} for i in range(6)]
SAMPLING = {"temperature": 1.0, "seed": 3, "max_new_tokens": 48}


def _llama_cpp(task: Any, *, path: str) -> Any:
    from distilabel_llm.llm.backends.llama_cpp import LlamaCppLLM

    return LlamaCppLLM.from_path(path, task, n_ctx=1024, n_threads=1)


def _transformers(task: Any, *, path: str) -> Any:
    import torch

    from distilabel_llm.llm.backends.transformers import TransformersLLM

    torch.set_num_threads(1)
    return TransformersLLM.from_pretrained(path, task)


def _loader(backend: str, tiny_models: Any) -> Any:
    if backend == "llama-cpp":
        pytest.importorskip("llama_cpp")
        return functools.partial(_llama_cpp, path=str(tiny_models.gguf_path))
    pytest.importorskip("transformers")
    return functools.partial(_transformers, path=str(tiny_models.hf_path))


def _valid(rows: List[List[Any]]) -> int:
    count = 0
    for row in rows:
        for output in row:
            try:
                jsonschema.validate(json.loads(output["raw_output"]), SCHEMA)
            except (ValueError, jsonschema.ValidationError):
                continue
            count += 1
    return count


@pytest.mark.parametrize("backend", ["llama-cpp", "transformers"])
def test_every_output_parses_and_validates_in_process(tiny_models: Any, backend: str) -> None:
    llm = _loader(backend, tiny_models)(TextGenerationTask())
    constrained = llm.generate(
        ROWS, num_generations=2, generation_kwargs={**SAMPLING, "structured_output": SCHEMA}
    )
    assert _valid(constrained) == 12
    for row in constrained:
        for output in row:
            assert output["parsed_output"] == json.loads(output["raw_output"])
            assert "error" not in output
    free = llm.generate(ROWS, num_generations=2, generation_kwargs=SAMPLING)
    assert _valid(free) == 0  # the random weights say nothing that parses by chance


@pytest.mark.parametrize("backend", ["llama-cpp", "transformers"])
def test_in_a_child_and_a_pool_with_a_pydantic_model(tiny_models: Any, backend: str) -> None:
    from structured_models import Verdict

    load = _loader(backend, tiny_models)
    task = TextGenerationTask()
    settings = {**SAMPLING, "structured_output": Verdict}
    with ProcessLLM(task, load) as llm:
        rows = llm.generate(ROWS, generation_kwargs=settings).result(timeout=60)
    assert all(isinstance(row[0]["parsed_output"], Verdict) for row in rows)
    with LLMPool.from_replicas(task, load, replicas=2) as pool:
        rows = pool.generate(ROWS, num_generations=2, generation_kwargs=settings)
    assert all(isinstance(output["parsed_output"], Verdict) for row in rows for output in row)
    assert 1 <= rows[0][0]["parsed_output"].score <= 10


def test_regular_expressions_and_choices(tiny_models: Any) -> None:
    hf = _loader("transformers", tiny_models)(TextGenerationTask())
    regex = hf.generate(ROWS, generation_kwargs={**SAMPLING, "structured_output": r"[a-c]{3}-\d"})
    assert all(len(row[0]["raw_output"]) == 5 and row[0]["parsed_output"] for row in regex)
    for load in (_loader("transformers", tiny_models), _loader("llama-cpp", tiny_models)):
        llm = load(TextGenerationTask())
        rows = llm.generate(
            ROWS, generation_kwargs={**SAMPLING, "structured_output": ["yes", "no"]}
        )
        assert {row[0]["parsed_output"] for row in rows} <= {"yes", "no"}


def test_what_an_engine_cannot_compile_fails_before_any_work(tiny_models: Any) -> None:
    gguf = _loader("llama-cpp", tiny_models)(TextGenerationTask())
    with pytest.raises(GenerationSettingsError, match="regular expression"):
        gguf.generate(ROWS, generation_kwargs={"structured_output": "[a-z]+"})
    hf = _loader("transformers", tiny_models)(TextGenerationTask())
    with pytest.raises(GenerationSettingsError, match="llguidance cannot compile"):
        hf.generate(ROWS, generation_kwargs={"structured_output": {"type": "no-such-type"}})
    for llm in (gguf, hf):  # a set used to escape as the grammar cache's own TypeError
        with pytest.raises(GenerationSettingsError, match="a set; use a list"):
            llm.generate(ROWS, generation_kwargs={"structured_output": {"enum": {"a", "b"}}})


def test_an_output_cut_off_keeps_its_text_and_says_why(tiny_models: Any) -> None:
    llm = _loader("llama-cpp", tiny_models)(TextGenerationTask())
    settings = {**SAMPLING, "max_new_tokens": 3, "structured_output": SCHEMA}
    (output,) = llm.generate(ROWS[:1], generation_kwargs=settings)[0]
    assert output["raw_output"] and output["parsed_output"] is None
    assert "cut off by max_new_tokens" in output["error"]


def test_a_rating_task_in_json_mode_gives_parseable_ratings_with_no_extra_code(
    tiny_models: Any,
) -> None:
    writer = _loader("llama-cpp", tiny_models)(TextGenerationTask())
    judge = _loader("llama-cpp", tiny_models)(
        UltraFeedbackTask.for_helpfulness(output_format="json")
    )
    rows = Pipeline(generator=writer, labeller=judge).generate(
        ROWS,
        num_generations=2,
        generation_kwargs={"max_new_tokens": 8},
        # A random-weight judge fills the schema's open-ended list until its context ends
        # (n_ctx=1024) at most seeds; this seed's six answers fit, and are what is checked.
        labeller_generation_kwargs={"max_new_tokens": 800, "temperature": 1.0, "seed": 4},
        display_progress_bar=False,
    )
    assert all(row["error"] is None for row in rows)
    assert all(row["rating"] and set(row["rating"]) <= {1.0, 2.0, 3.0, 4.0, 5.0} for row in rows)
