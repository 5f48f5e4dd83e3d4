"""A legacy 0.x script runs unchanged apart from the package name; legacy `generate`
arguments map onto ours, or are refused with what to do instead."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Callable, Dict, List

import pytest
from pipeline_helpers import LengthRatingTask, fault_server_module

from distilabel_llm.dataset import DatasetCheckpoint
from distilabel_llm.errors import DistilabelLLMError
from distilabel_llm.pipeline import Pipeline, PipelineArgumentError, PipelineError, pipeline
from distilabel_llm.tasks import (
    CritiqueTask,
    EvolComplexityTask,
    EvolQualityTask,
    TextGenerationTask,
    UltraFeedbackTask,
)
from distilabel_llm.testing import FakeLLM

pytestmark = pytest.mark.timeout(60)

MakeLLM = Callable[..., FakeLLM]

LEGACY_SCRIPT = """
from distilabel_llm.dataset import DatasetCheckpoint
from distilabel_llm.llm import LLMPool, ProcessLLM
from distilabel_llm.pipeline import Pipeline
from distilabel_llm.tasks import TextGenerationTask
from distilabel_llm.testing import FakeLLM


def load_a(task):
    return FakeLLM(task=task, model_name="a")


def load_b(task):
    return FakeLLM(task=task, model_name="b")


def load_judge(task):
    return FakeLLM(task=task, model_name="judge")


def on_progress(advance=1):  # legacy progress callbacks take `advance` by keyword
    on_progress.total += advance


on_progress.total = 0
task = TextGenerationTask()
pool = LLMPool(llms=[ProcessLLM(task=task, load_llm_fn=load_a),
                     ProcessLLM(task=task, load_llm_fn=load_b)])
future = ProcessLLM(task=task, load_llm_fn=load_a).generate(
    inputs=[{"input": "hi"}], num_generations=2, progress_callback_func=on_progress
)
assert len(future.result()[0]) == 2 and on_progress.total == 2
from pipeline_helpers import LengthRatingTask  # a rating task a fake model's text parses for

labeller = ProcessLLM(task=LengthRatingTask(), load_llm_fn=load_judge)
dataset = Pipeline(generator=pool, labeller=labeller).generate(
    dataset=[{"input": f"question {i}"} for i in range(6)],
    num_generations=2,
    batch_size=2,
    shuffle_before_labelling=True,
    checkpoint_strategy=DatasetCheckpoint(path="ckpt", save_frequency=2),
    skip_dry_run=False,
    display_progress_bar=False,
)
assert len(dataset) == 6 and all(row["rating"] for row in dataset)
assert dataset[0]["generation_prompt"] and dataset[0]["labelling_prompt"]
pool.teardown()
labeller.teardown()
print("legacy script done")
"""


def test_a_legacy_script_runs_unchanged(tmp_path: Path) -> None:
    script = tmp_path / "legacy.py"
    script.write_text(textwrap.dedent(LEGACY_SCRIPT), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env={"PYTHONPATH": str(Path(__file__).parent), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=50,
    )
    assert done.returncode == 0, done.stderr
    assert "legacy script done" in done.stdout
    rows = [json.loads(line) for line in (tmp_path / "ckpt" / "checkpoint.jsonl").open()]
    assert len(rows) == 6


def test_prompts_are_written_unless_left_out(make_llm: MakeLLM) -> None:
    rows = _prompts(2)
    pipeline_ = Pipeline(generator=make_llm(), labeller=make_llm(LengthRatingTask()))
    full = pipeline_.generate(rows, num_generations=2, display_progress_bar=False)
    assert full[0]["generation_prompt"] == [full[0]["generation_prompt"][0]] * 2
    assert "q0: ['fake #0: q0', 'fake #1: q0']" in full[0]["labelling_prompt"]
    lean = pipeline_.generate(rows, include_prompts=False, display_progress_bar=False)
    assert "generation_prompt" not in lean[0] and "labelling_prompt" not in lean[0]


def test_shuffling_before_labelling_keeps_every_generation_column_aligned(
    make_llm: MakeLLM,
) -> None:
    generator = make_llm(num_threads=None)
    rows = Pipeline(generator=generator, labeller=make_llm(LengthRatingTask())).generate(
        _prompts(20), num_generations=4, shuffle_before_labelling=True, display_progress_bar=False
    )
    orders = set()
    for row in rows:
        order = [int(text.split("#")[1].split(":")[0]) for text in row["raw_generation_responses"]]
        assert row["generations"] == row["raw_generation_responses"]
        assert sorted(order) == [0, 1, 2, 3]
        orders.add(tuple(order))
    assert len(orders) > 1  # shuffled, row by row


def test_a_failing_dry_run_stops_before_the_job(make_llm: MakeLLM, tmp_path: Path) -> None:
    checkpoint = tmp_path / "out.jsonl"
    with pytest.raises(PipelineError, match="dry run on the first row failed"):
        Pipeline(generator=make_llm(raise_on="q0")).generate(
            _prompts(5), checkpoint=checkpoint, skip_dry_run=False, display_progress_bar=False
        )
    assert not checkpoint.exists() or checkpoint.read_text() == ""


@pytest.mark.parametrize(
    "arguments",
    [{}, {"generator": "not an LLM"}, {"labeller": TextGenerationTask()}],
    ids=["neither", "generator", "labeller"],
)
def test_construction_errors_are_caught_as_legacy_and_new_code_catch_them(
    arguments: Dict[str, Any],
) -> None:
    # Legacy raised ValueError for all three; a TypeError suits the wrong type: both catch it.
    for caught in (ValueError, TypeError, DistilabelLLMError):
        with pytest.raises(caught) as raised:
            Pipeline(**arguments)
        assert isinstance(raised.value, PipelineArgumentError)


def test_deitas_evolution_tasks_write_legacys_columns() -> None:
    # One evolved text per generation, in legacy's column: `instructions` for Evol-Complexity,
    # `generations` for Evol-Quality (which reads a row's single `generation`).
    complexity = Pipeline(generator=FakeLLM(EvolComplexityTask(), model_name="evolver"))
    rows = complexity.generate(_prompts(2), num_generations=2, display_progress_bar=False)
    assert rows[1]["instructions"] == ["evolver #0: q1", "evolver #1: q1"]
    quality = Pipeline(generator=FakeLLM(EvolQualityTask(), model_name="evolver"))
    rows = quality.generate(
        [{"input": "q0", "generation": "a0"}], num_generations=2, display_progress_bar=False
    )
    assert rows[0]["generations"] == ["evolver #0: q0", "evolver #1: q0"]


def test_legacy_arguments_without_a_counterpart_are_explained(make_llm: MakeLLM) -> None:
    pipeline_ = Pipeline(generator=make_llm())
    explained = r"`enable_checkpoints` \(pass `checkpoint=`.*'Coming from distilabel 0\.x'"
    with pytest.raises(TypeError, match=explained):
        pipeline_.generate(_prompts(1), enable_checkpoints=True)
    with pytest.raises(ValueError, match="does not save to a folder on disk"):
        pipeline_.generate(_prompts(1), checkpoint_strategy=DatasetCheckpoint(strategy="hf-hub"))


@pytest.mark.parametrize(
    ("task", "subtask", "labelling_task"),
    [("preference", "helpfulness", UltraFeedbackTask), ("critique", None, CritiqueTask)],
)
def test_the_legacy_pipeline_factory_builds_an_openai_labeller(
    make_llm: MakeLLM, task: str, subtask: Any, labelling_task: type
) -> None:
    with fault_server_module().FaultServer(models=["gpt-3.5-turbo"]) as server:
        built = pipeline(
            task, subtask, generator=make_llm(), openai_api_key="k", base_url=server.url
        )
        assert isinstance(built.labeller.task, labelling_task)
        rows = built.generate(_prompts(2), num_generations=2, display_progress_bar=False)
        built.labeller.close()
    assert len(rows) == 2 and rows[0]["labelling_model"] == "gpt-3.5-turbo"
    assert server.requests()[0].body["temperature"] == 0.0
    with pytest.raises(ValueError, match="Unknown preference subtask"):
        pipeline("preference", "wit", openai_api_key="k")


def _prompts(n: int) -> List[Dict[str, Any]]:
    return [{"input": f"q{i}"} for i in range(n)]


def test_task_field_is_kept(make_llm: MakeLLM) -> None:  # the generator's task is untouched
    assert isinstance(make_llm().task, TextGenerationTask)
