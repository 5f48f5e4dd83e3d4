"""Pipeline.generate in one process: columns, labelling, failures, overlap, checkpoints."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any, Callable, Dict, List

import pytest
from pipeline_helpers import LengthRatingTask

from distilabel_llm.llm.core.llm import LLM
from distilabel_llm.llm.core.outputs import LLMOutput
from distilabel_llm.pipeline import DatasetError, Pipeline, PipelineError
from distilabel_llm.tasks import Task, TextGenerationTask, UltraFeedbackTask
from distilabel_llm.testing import FakeLLM

pytestmark = pytest.mark.timeout(30)

MakeLLM = Callable[..., FakeLLM]


class HookLLM(LLM):
    """An LLM that calls `hook(inputs)` before answering each `_generate` call."""

    def __init__(self, task: Task, hook: Callable[[List[Dict[str, Any]]], None]) -> None:
        super().__init__(task)
        self.hook = hook

    @property
    def model_name(self) -> str:
        return "hook"

    def _generate(
        self, inputs: List[Dict[str, Any]], num_generations: int = 1
    ) -> List[List[LLMOutput]]:
        self.hook(inputs)
        prompts = self._generate_prompts(inputs)
        return [
            [self._output(prompt, f"hook: {row['input']}") for _ in range(num_generations)]
            for row, prompt in zip(inputs, prompts)
        ]


def _prompts(n: int) -> List[Dict[str, Any]]:
    return [{"input": f"q{i}"} for i in range(n)]


def test_generation_columns(make_llm: MakeLLM) -> None:
    rows = _prompts(5)
    out = Pipeline(generator=make_llm(model_name="gen")).generate(
        rows, num_generations=2, batch_size=2, display_progress_bar=False
    )
    assert [row["input"] for row in out] == [row["input"] for row in rows]
    assert out[3] == {
        "input": "q3",
        "generation_model": ["gen", "gen"],
        "generation_prompt": [f"{TextGenerationTask().system_prompt}\nq3"] * 2,  # as sent
        "raw_generation_responses": ["gen #0: q3", "gen #1: q3"],
        "generation_statistics": {"input_tokens": [34, 34], "output_tokens": [3, 3]},
        "generations": ["gen #0: q3", "gen #1: q3"],
        "error": None,
    }
    assert rows[3] == {"input": "q3"}  # the caller's rows are left alone


@pytest.mark.parametrize("num_threads", [None, 3])
def test_labeller_columns(make_llm: MakeLLM, num_threads: Any) -> None:
    generator = make_llm(model_name="gen", num_threads=num_threads)
    labeller = make_llm(LengthRatingTask(), model_name="judge", num_threads=num_threads)
    pipeline = Pipeline(generator=generator, labeller=labeller)
    out = pipeline.generate(_prompts(7), batch_size=3, display_progress_bar=False)
    assert len(out) == 7
    row = out[6]
    assert row["generations"] == ["gen #0: q6"]
    assert row["labelling_model"] == "judge"
    assert row["raw_labelling_response"] == "judge #0: q6"
    assert row["rating"] == [float(len("judge #0: q6"))]
    assert row["rationale"] == "judge #0: q6"
    assert list(row)[-1] == "error" and row["error"] is None
    assert pipeline.stats is not None and pipeline.stats.rows_done == 7


def test_labeller_only(make_llm: MakeLLM) -> None:
    rows = [{"input": "q", "generations": ["a", "b"]}]
    out = Pipeline(labeller=make_llm(LengthRatingTask(), model_name="judge")).generate(
        rows, display_progress_bar=False
    )
    assert out[0]["generations"] == ["a", "b"] and out[0]["labelling_model"] == "judge"


def test_missing_column_is_reported_before_generating(make_llm: MakeLLM) -> None:
    generator = make_llm()
    with pytest.raises(DatasetError, match=r"TextGenerationTask needs the column\(s\) \['input'\]"):
        Pipeline(generator=generator).generate([{"prompt": "x"}], display_progress_bar=False)
    assert generator.calls == 0
    labeller = make_llm(UltraFeedbackTask())
    with pytest.raises(DatasetError, match=r"labeller's task UltraFeedbackTask .*'generations'"):
        Pipeline(labeller=labeller).generate([{"input": "x"}], display_progress_bar=False)
    assert labeller.calls == 0


def test_failed_rows_are_kept_with_an_error(make_llm: MakeLLM) -> None:
    rows = [*_prompts(3), {"input": "boom"}, {"input": None}, *_prompts(2)]
    generator = make_llm(raise_on="boom")
    labeller = make_llm(LengthRatingTask(), model_name="judge")
    out = Pipeline(generator=generator, labeller=labeller).generate(
        rows, batch_size=4, display_progress_bar=False
    )
    assert len(out) == len(rows)
    failed = out[3]
    assert failed["input"] == "boom"
    assert failed["generations"] is None and failed["rating"] is None
    assert "generation failed: RuntimeError: fake was told to fail on 'boom'" in failed["error"]
    assert "row has no value for ['input']" in out[4]["error"]
    # The batch was retried row by row, so its other rows went through.
    assert [row["error"] for row in out[:3] + out[5:]] == [None] * 5
    assert out[2]["rating"] is not None


def test_failed_labelling_keeps_the_generations(make_llm: MakeLLM) -> None:
    labeller = make_llm(LengthRatingTask(), raise_on="q1")
    out = Pipeline(generator=make_llm(), labeller=labeller).generate(
        _prompts(3), display_progress_bar=False
    )
    assert out[1]["generations"] == ["fake #0: q1"]
    assert out[1]["rating"] is None and out[1]["error"].startswith("labelling failed")
    assert out[0]["error"] is None and out[2]["error"] is None


def test_broken_generator_stops_the_job_and_leaves_its_rows_to_retry(
    make_llm: MakeLLM, tmp_path: Path
) -> None:
    checkpoint = tmp_path / "out.jsonl"
    rows = [*_prompts(2), *[{"input": f"boom {i}"} for i in range(8)]]
    pipeline = Pipeline(generator=make_llm(raise_on="boom"))
    with pytest.raises(PipelineError, match="models failed on 3 whole batches in a row") as stopped:
        pipeline.generate(rows, batch_size=2, checkpoint=checkpoint, display_progress_bar=False)
    assert [row["input"] for row in stopped.value.rows] == ["q0", "q1"]
    assert len(checkpoint.read_text().splitlines()) == 2
    # Once the generator works again, re-running retries the rows instead of keeping failures.
    fixed = make_llm()
    out = Pipeline(generator=fixed).generate(
        rows, batch_size=2, checkpoint=checkpoint, display_progress_bar=False
    )
    assert [row["error"] for row in out] == [None] * 10 and fixed.calls == 4


def test_generator_works_while_the_labeller_rates(make_llm: MakeLLM) -> None:
    """The labeller rates batch 0 only once the generator has started batch 1."""
    second_batch_started = threading.Event()

    def on_generate(inputs: List[Dict[str, Any]]) -> None:
        if inputs[0]["input"] == "q2":
            second_batch_started.set()

    def on_label(inputs: List[Dict[str, Any]]) -> None:
        if inputs[0]["input"] == "q0":
            assert second_batch_started.wait(timeout=10), "generator idle while labelling"

    with (
        HookLLM(TextGenerationTask(), on_generate) as generator,
        HookLLM(LengthRatingTask(), on_label) as labeller,
    ):
        out = Pipeline(generator=generator, labeller=labeller).generate(
            _prompts(6), batch_size=2, display_progress_bar=False
        )
    assert [row["error"] for row in out] == [None] * 6


def test_checkpoint_resume_generates_only_missing_rows(make_llm: MakeLLM, tmp_path: Path) -> None:
    checkpoint = tmp_path / "out.jsonl"
    rows = _prompts(7)
    first = Pipeline(generator=make_llm()).generate(
        rows[:3], checkpoint=checkpoint, display_progress_bar=False
    )
    assert len(first) == 3
    second_llm = make_llm()
    out = Pipeline(generator=second_llm).generate(
        rows, batch_size=2, checkpoint=checkpoint, display_progress_bar=False
    )
    assert out[:3] == first and [row["input"] for row in out] == [row["input"] for row in rows]
    saved = [json.loads(line) for line in checkpoint.read_text().splitlines()]
    assert saved == out
    assert second_llm.calls == 2  # rows 3-4 and 5-6


def test_bad_arguments(make_llm: MakeLLM) -> None:
    with pytest.raises(ValueError, match="needs a `generator`, a `labeller` or both"):
        Pipeline()
    with pytest.raises(TypeError, match="must be an LLM"):
        Pipeline(generator="gpt")
    pipeline = Pipeline(generator=make_llm())
    with pytest.raises(ValueError, match="`batch_size` must be a positive integer"):
        pipeline.generate(_prompts(1), batch_size=0)
    with pytest.raises(ValueError, match="`num_generations` must be a positive integer"):
        pipeline.generate(_prompts(1), num_generations=True)
    assert pipeline.generate([], display_progress_bar=False) == []


def test_broken_labeller_stops_the_job_too(make_llm: MakeLLM) -> None:
    labeller = make_llm(LengthRatingTask(), raise_on="q")
    with pytest.raises(PipelineError, match="models failed on 3 whole batches") as stopped:
        Pipeline(generator=make_llm(), labeller=labeller).generate(
            _prompts(10), batch_size=2, display_progress_bar=False
        )
    assert stopped.value.rows == []


def test_process_llm_generator_and_labeller(tmp_path: Path) -> None:
    """Futures from real child processes: generator and labeller each in their own."""
    from distilabel_llm.llm.members.process import ProcessLLM

    with (
        ProcessLLM(
            TextGenerationTask(), lambda task: FakeLLM(task, model_name="child-gen")
        ) as generator,
        ProcessLLM(
            LengthRatingTask(), lambda task: FakeLLM(task, model_name="child-judge")
        ) as labeller,
    ):
        out = Pipeline(generator=generator, labeller=labeller).generate(
            _prompts(9),
            num_generations=2,
            batch_size=4,
            checkpoint=tmp_path / "out.jsonl",
            display_progress_bar=False,
        )
    assert [row["generations"] for row in out] == [
        [f"child-gen #0: q{i}", f"child-gen #1: q{i}"] for i in range(9)
    ]
    assert all(row["labelling_model"] == "child-judge" for row in out)
