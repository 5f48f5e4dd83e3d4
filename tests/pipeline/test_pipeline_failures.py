"""A job never saves a failed row as done: failed rows are retried on resume, and a model that
cannot generate at all stops the job at once, with one clear message."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path
from typing import Any, Callable, Dict, List

import pytest
from pipeline_helpers import fault_server_module

from distilabel_llm.cli import main
from distilabel_llm.llm import ProcessLLM
from distilabel_llm.llm.core.outputs import LLMOutput
from distilabel_llm.pipeline import CheckpointError, Pipeline, PipelineError
from distilabel_llm.tasks import TextGenerationTask
from distilabel_llm.testing import FakeLLM

pytestmark = pytest.mark.timeout(60)

MakeLLM = Callable[..., FakeLLM]


def _prompts(n: int) -> List[Dict[str, Any]]:
    return [{"input": f"q{i}"} for i in range(n)]


def _lines(path: Path) -> List[Dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_rows_saved_with_an_error_are_retried_on_resume(make_llm: MakeLLM, tmp_path: Path) -> None:
    checkpoint = tmp_path / "out.jsonl"
    rows = _prompts(7)
    first = Pipeline(generator=make_llm(raise_on="q3")).generate(
        rows, batch_size=2, checkpoint=checkpoint, display_progress_bar=False
    )
    assert [row["error"] is not None for row in first] == [i == 3 for i in range(7)]
    pipeline = Pipeline(generator=make_llm())  # the same model, working now
    again = pipeline.generate(rows, batch_size=2, checkpoint=checkpoint, display_progress_bar=False)
    assert [row["generations"] for row in again] == [[f"fake #0: q{i}"] for i in range(7)]
    assert all(row["error"] is None for row in again)
    assert pipeline.stats is not None and pipeline.stats.rows_resumed == 6
    saved = _lines(checkpoint)  # each row once, in input order, the retried one in its place
    assert saved == again


def test_a_resumed_job_retries_failed_rows_and_appends_the_missing_ones(
    make_llm: MakeLLM, tmp_path: Path
) -> None:
    checkpoint = tmp_path / "out.jsonl"
    Pipeline(generator=make_llm(raise_on="q1")).generate(
        _prompts(3), checkpoint=checkpoint, display_progress_bar=False
    )
    pipeline = Pipeline(generator=make_llm())
    rows = pipeline.generate(
        _prompts(5), batch_size=2, checkpoint=checkpoint, display_progress_bar=False
    )
    assert [row["error"] for row in rows] == [None] * 5
    assert pipeline.stats is not None and pipeline.stats.rows_resumed == 2
    assert [row["input"] for row in _lines(checkpoint)] == [f"q{i}" for i in range(5)]


def _broken_load(task: Any) -> FakeLLM:
    raise OSError("CUDA out of memory while loading the weights")


def test_a_model_that_cannot_load_stops_the_job_at_once(tmp_path: Path) -> None:
    checkpoint = tmp_path / "out.jsonl"
    with (
        ProcessLLM(_task(), _broken_load) as llm,
        pytest.raises(PipelineError, match="The generator cannot generate") as stopped,
    ):
        Pipeline(generator=llm).generate(
            _prompts(40), batch_size=4, checkpoint=checkpoint, display_progress_bar=False
        )
    message = str(stopped.value)
    assert message.count("Traceback in the child process") == 1
    assert "OSError: CUDA out of memory" in message and "create a new" not in message
    assert stopped.value.rows == [] and checkpoint.read_text() == ""


def _task() -> Any:
    from distilabel_llm.tasks import TextGenerationTask

    return TextGenerationTask()


@pytest.mark.skipif(importlib.util.find_spec("openai") is None, reason="needs the openai extra")
def test_a_rejected_api_key_stops_the_job_and_the_cli_exits_with_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from distilabel_llm.llm.backends.openai import OpenAILLM

    with fault_server_module().FaultServer(api_key="secret") as server:
        llm = OpenAILLM(
            _task(), model="m", base_url=server.url, api_key="wrong", validate_model=False
        )
        with llm, pytest.raises(PipelineError, match="refused"):
            Pipeline(generator=llm).generate(_prompts(3), display_progress_bar=False)
        prompts = tmp_path / "in.jsonl"
        prompts.write_text("".join(json.dumps(row) + "\n" for row in _prompts(3)))
        code = main(
            [
                "generate", "--input", str(prompts), "--output", str(tmp_path / "out.jsonl"),
                "--backend", "openai", "--model", "m", "--base-url", server.url,
                "--api-key", "wrong", "--no-progress",
            ]
        )  # fmt: skip
    assert code == 1  # the model check at start-up: before any row
    assert "rejected the API key" in " ".join(capsys.readouterr().err.split())
    assert not (tmp_path / "out.jsonl").exists()


@pytest.mark.parametrize("path", ["/dev/full", "directory"])
def test_a_checkpoint_that_is_not_a_regular_file_is_refused(tmp_path: Path, path: str) -> None:
    target = Path(path) if path.startswith("/") else tmp_path
    if not target.exists():
        pytest.skip(f"{target} does not exist here")
    with pytest.raises(CheckpointError, match="not a regular file"):
        Pipeline(generator=FakeLLM(_task())).generate(
            _prompts(1), checkpoint=target, display_progress_bar=False
        )


def test_outputs_declare_statistics_and_error_optional_at_runtime() -> None:
    assert LLMOutput.__required_keys__ == {
        "model_name",
        "prompt_used",
        "raw_output",
        "parsed_output",
    }
    assert LLMOutput.__optional_keys__ == {"statistics", "error", "transient"}


def test_cli_refuses_a_device_as_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full here")
    prompts = tmp_path / "in.jsonl"
    prompts.write_text(json.dumps({"input": "a"}) + "\n")
    code = main(
        [
            "generate", "--input", str(prompts), "--output", "/dev/full",
            "--backend", "openai", "--model", "m", "--base-url", "http://127.0.0.1:9/v1",
            "--api-key", "k",
        ]
    )  # fmt: skip
    assert code == 1
    assert "not a regular file" in " ".join(capsys.readouterr().err.split())


# The job remembers its settings.


def test_resuming_with_other_settings_fails_naming_what_changed(
    make_llm: MakeLLM, tmp_path: Path
) -> None:
    checkpoint = tmp_path / "out.jsonl"
    settings = {"temperature": 0.7}
    Pipeline(generator=make_llm()).generate(
        _prompts(2), checkpoint=checkpoint, generation_kwargs=settings, display_progress_bar=False
    )
    pipeline = Pipeline(generator=make_llm())
    with pytest.raises(CheckpointError, match="num_generations was 1, now 2"):
        pipeline.generate(
            _prompts(4),
            num_generations=2,
            checkpoint=checkpoint,
            generation_kwargs=settings,
            display_progress_bar=False,
        )
    with pytest.raises(CheckpointError, match=r"generation_kwargs was \{\"temperature\": 0.7\}"):
        pipeline.generate(_prompts(4), checkpoint=checkpoint, display_progress_bar=False)
    with pytest.raises(
        CheckpointError, match=r"generator \[\"fake\"\], but this job's .*\"other\""
    ):
        Pipeline(generator=make_llm(model_name="other")).generate(
            _prompts(4),
            checkpoint=checkpoint,
            generation_kwargs=settings,
            display_progress_bar=False,
        )
    with pytest.raises(CheckpointError, match="generator_task was"):
        Pipeline(generator=make_llm(TextGenerationTask(system_prompt="Other."))).generate(
            _prompts(4),
            checkpoint=checkpoint,
            generation_kwargs=settings,
            display_progress_bar=False,
        )
    assert len(_lines(checkpoint)) == 2  # nothing was written by the refused runs
    rows = pipeline.generate(
        _prompts(4), checkpoint=checkpoint, generation_kwargs=settings, display_progress_bar=False
    )
    assert len(rows) == 4 and json.loads((tmp_path / "out.jsonl.job.json").read_text()) == {
        "models": {"generator": ["fake"], "labeller": []},
        "settings": {
            "generation_kwargs": {"temperature": 0.7},
            "generator_task": TextGenerationTask().to_dict(),
            "labeller_generation_kwargs": {},
            "labeller_task": None,
            "num_generations": 1,
        },
    }


_QUIET: Dict[str, Any] = {"display_progress_bar": False, "skip_dry_run": True}


@pytest.mark.skipif(importlib.util.find_spec("openai") is None, reason="needs the openai extra")
def test_a_row_missing_one_generation_is_saved_with_an_error_and_retried(tmp_path: Path) -> None:
    from distilabel_llm.llm.backends.openai import OpenAILLM

    fault_server = fault_server_module()
    checkpoint = tmp_path / "out.jsonl"
    with fault_server.FaultServer() as server:
        llm = OpenAILLM(
            _task(), model="m", base_url=server.url, api_key="key", validate_model=False
        )
        with llm:
            # One choice of the two asked for, then the top-up request is refused.
            server.script(fault_server.Fault(choices=1), fault_server.Fault(status=400))
            first = Pipeline(generator=llm).generate(
                _prompts(1), num_generations=2, checkpoint=checkpoint, **_QUIET
            )
            assert first[0]["generations"][1] is None
            assert first[0]["error"].startswith(
                "generation failed: m returned no text for 1 of this row's 2 generations (index 1"
            )
            sent = len(server.requests())
            rerun = Pipeline(generator=llm).generate(
                _prompts(1), num_generations=2, checkpoint=checkpoint, **_QUIET
            )
    assert len(server.requests()) > sent  # the rerun sent the row again
    assert rerun[0]["error"] is None and None not in rerun[0]["generations"]
    assert [row["error"] for row in _lines(checkpoint)] == [None]


def test_a_checkpoint_that_is_the_input_file_is_refused(make_llm: MakeLLM, tmp_path: Path) -> None:
    prompts = tmp_path / "in.jsonl"
    prompts.write_text("".join(json.dumps(row) + "\n" for row in _prompts(2)))
    (tmp_path / "link.jsonl").symlink_to(prompts)
    for checkpoint in (prompts, tmp_path / "link.jsonl"):
        with pytest.raises(CheckpointError, match="is the input file"):
            Pipeline(generator=make_llm()).generate(
                str(prompts), checkpoint=checkpoint, display_progress_bar=False
            )
    assert _lines(prompts) == _prompts(2)
