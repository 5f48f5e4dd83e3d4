"""Real models in Ray actors: the kit's tiny llama, through transformers and llama.cpp, gives
in an actor exactly what it gives in this process."""

from __future__ import annotations

import functools
from typing import Any

import pytest

from distilabel_llm import TextGenerationTask
from distilabel_llm.llm import LLMPool, RayLLM
from distilabel_llm.pipeline.backends import load_llm

pytestmark = [pytest.mark.ray, pytest.mark.timeout(120)]

ROWS = [{"input": text} for text in ("the cat", "a dog runs", "rain falls", "we read")]


@pytest.mark.parametrize("backend", ["transformers", "llama-cpp"])
def test_an_actor_generates_what_this_process_does(tiny_models: Any, backend: str) -> None:
    pytest.importorskip("llama_cpp" if backend == "llama-cpp" else "transformers")
    model = str(tiny_models.gguf_path if backend == "llama-cpp" else tiny_models.hf_path)
    load = functools.partial(load_llm, backend=backend, model=model, max_new_tokens=8, threads=1)
    task = TextGenerationTask()
    expected = load(task).generate(ROWS, num_generations=2)
    with RayLLM(task, load, num_cpus=1) as llm:
        assert llm.generate(ROWS, num_generations=2).result(timeout=90) == expected
        assert llm.model_name == expected[0][0]["model_name"]


def test_a_pool_of_tiny_llamas_on_ray(tiny_models: Any) -> None:
    pytest.importorskip("llama_cpp")
    load = functools.partial(
        load_llm, backend="llama-cpp", model=str(tiny_models.gguf_path), max_new_tokens=8, threads=1
    )
    task = TextGenerationTask()
    expected = load(task).generate(ROWS * 4)
    with LLMPool.from_ray(task, load, replicas=2, num_cpus=1) as pool:
        assert pool.generate(ROWS * 4) == expected


def test_seeded_samples_from_ray_replicas_are_one_models_samples(tiny_models: Any) -> None:
    pytest.importorskip("llama_cpp")
    load = functools.partial(
        load_llm, backend="llama-cpp", model=str(tiny_models.gguf_path), max_new_tokens=8, threads=1
    )
    task = TextGenerationTask()
    settings = {"temperature": 1.0, "seed": 11}
    expected = load(task).generate(ROWS, num_generations=4, generation_kwargs=settings)
    assert all(len({output["raw_output"] for output in row}) > 1 for row in expected)
    with LLMPool.from_ray(task, load, replicas=2, num_cpus=1, strategy="spread") as pool:
        assert pool.generate(ROWS, num_generations=4, generation_kwargs=settings) == expected


def test_structured_output_from_a_ray_member_with_a_pydantic_model(tiny_models: Any) -> None:
    pytest.importorskip("llama_cpp")
    import pydantic

    class Verdict(pydantic.BaseModel):  # defined here: it never reaches the actor as a class
        score: int = pydantic.Field(ge=1, le=10)

    load = functools.partial(
        load_llm,
        backend="llama-cpp",
        model=str(tiny_models.gguf_path),
        max_new_tokens=32,
        threads=1,
    )
    with RayLLM(TextGenerationTask(), load, num_cpus=1) as llm:
        rows = llm.generate(ROWS, generation_kwargs={"structured_output": Verdict}).result(60)
    assert all(isinstance(row[0]["parsed_output"], Verdict) for row in rows)
