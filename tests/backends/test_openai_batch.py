"""Offline batch generation through the OpenAI Batch API, against the fault server's fake one:
one job per call, rows back in order with failed requests' errors, and a run that stops before
the job is done followed by a rerun that fetches it, creating exactly one job."""

from __future__ import annotations

import json
import pickle
import signal
import threading
from pathlib import Path
from typing import Any, Iterator, List

import pytest

from distilabel_llm.errors import OfflineBatchNotFinishedError
from distilabel_llm.pipeline import Pipeline, read_jsonl
from distilabel_llm.tasks import TextGenerationTask

pytest.importorskip("openai", reason="the `openai` extra is not installed")

from fault_server import FaultServer

from distilabel_llm.llm.openai import OpenAILLM

ROWS = [{"input": "one"}, {"input": "two batch-fail"}, {"input": "three"}]


@pytest.fixture
def server() -> Iterator[FaultServer]:
    with FaultServer() as server:
        yield server


def _llm(server: FaultServer, **kwargs: Any) -> OpenAILLM:
    kwargs.setdefault("use_offline_batch_generation", True)
    return OpenAILLM(
        TextGenerationTask(), model="fault-model", base_url=server.url, api_key="k", **kwargs
    )


def _texts(rows: Any) -> List[List[Any]]:
    return [[output["raw_output"] for output in row] for row in rows]


def test_an_unfinished_job_is_fetched_by_a_rerun_without_paying_twice(server: FaultServer) -> None:
    with _llm(server) as first, pytest.raises(OfflineBatchNotFinishedError) as stopped:
        first.generate(ROWS, num_generations=2)
    assert "jobs_ids=('batch-1',)" in str(stopped.value)
    with _llm(server, jobs_ids=stopped.value.jobs_ids) as rerun:
        rows = rerun.generate(ROWS, num_generations=2)
        assert rerun.jobs_ids is None  # fetched: the next call submits its own job
    assert _texts(rows) == [
        ["echo 0: one", "echo 1: one"],
        [None, None],
        ["echo 0: three", "echo 1: three"],
    ]
    assert "the fake batch failed this request" in rows[1][0]["error"]
    assert rows[0][0]["statistics"]["input_tokens"] > 0
    assert server.batches.created == 1
    assert server.requests() == []  # nothing was sent one request at a time


def test_blocking_checks_until_the_job_is_done(server: FaultServer) -> None:
    server.batches.checks_to_finish = 4
    with _llm(server, offline_batch_generation_block_until_done=0.01) as llm:
        results = llm.generate_outputs([[{"role": "user", "content": "hi"}], "there"])
    assert [result["generations"] for result in results] == [["echo 0: hi"], ["echo 0: there"]]
    assert server.batches.created == 1


def test_each_request_carries_the_settings_seeds_and_n(server: FaultServer) -> None:
    settings = {"seed": 7, "max_new_tokens": 5, "extra_body": {"top_k": 3}}
    with _llm(server, offline_batch_generation_block_until_done=0.01) as llm:
        llm.generate(ROWS[:1] * 2, num_generations=3, generation_kwargs=settings)
    uploaded = server.batches.files["file-0"].decode().splitlines()
    first, second = (json.loads(line) for line in uploaded)
    assert first["custom_id"] != second["custom_id"]
    assert first["url"] == "/v1/chat/completions"
    body = first["body"]
    assert (body["seed"], body["n"], body["max_tokens"], body["top_k"]) == (7, 3, 5, 3)
    assert body["model"] == "fault-model" and body["messages"][-1]["content"] == "one"


def test_job_ids_from_other_rows_are_refused(server: FaultServer) -> None:
    with _llm(server) as llm, pytest.raises(OfflineBatchNotFinishedError) as stopped:
        llm.generate(ROWS)
    server.batches.checks_to_finish = 0
    with (
        _llm(server, jobs_ids=stopped.value.jobs_ids) as llm,
        pytest.raises(ValueError, match="holds 3 requests, but this call has 1 rows"),
    ):
        llm.generate(ROWS[:1])


def test_the_error_crosses_processes_and_bad_settings_are_named(server: FaultServer) -> None:
    error = pickle.loads(pickle.dumps(OfflineBatchNotFinishedError(("batch-9",), "validating")))
    assert error.jobs_ids == ("batch-9",) and error.status == "validating"
    with pytest.raises(ValueError, match="positive number of seconds"):
        _llm(server, offline_batch_generation_block_until_done=0)
    with _llm(server) as llm, pytest.raises(NotImplementedError, match="Offline batch"):
        Pipeline(labeller=llm)


def test_a_pipeline_job_stopped_before_its_batch_is_done_fetches_it_when_run_again(
    server: FaultServer, tmp_path: Path
) -> None:
    checkpoint = tmp_path / "out.jsonl"
    saved = tmp_path / "out.jsonl.batch.json"
    rows = [{"input": f"row {i}"} for i in range(5)]
    job = {"checkpoint": checkpoint, "batch_size": 2, "display_progress_bar": False}
    with _llm(server) as llm, pytest.raises(OfflineBatchNotFinishedError):
        Pipeline(generator=llm).generate(rows, **job)
    assert json.loads(saved.read_text())["jobs_ids"] == ["batch-1"]
    with _llm(server) as llm:  # the same job, run again by a new process
        done = Pipeline(generator=llm).generate(rows, **job)
    assert [row["generations"] for row in done] == [[f"echo 0: row {i}"] for i in range(5)]
    assert [row["input"] for row in read_jsonl(checkpoint)] == [row["input"] for row in rows]
    assert server.batches.created == 1
    assert not saved.exists()
    with _llm(server) as llm, pytest.raises(ValueError, match="skip_dry_run=True"):
        Pipeline(generator=llm).generate(rows, skip_dry_run=False)


@pytest.mark.timeout(60)
def test_ctrl_c_while_waiting_for_the_batch_keeps_its_ids(
    server: FaultServer, tmp_path: Path
) -> None:
    server.batches.checks_to_finish = 10**9
    checkpoint = tmp_path / "out.jsonl"
    rows = [{"input": "one"}, {"input": "two"}]

    def interrupt_once_submitted() -> None:
        if server.batches.checked_in_progress.wait(30.0):
            signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)

    interrupter = threading.Thread(target=interrupt_once_submitted)
    with _llm(server, offline_batch_generation_block_until_done=0.01) as llm:
        interrupter.start()
        with pytest.raises(KeyboardInterrupt):
            Pipeline(generator=llm).generate(rows, checkpoint=checkpoint)
    interrupter.join()
    saved = json.loads((tmp_path / "out.jsonl.batch.json").read_text())
    server.batches.checks_to_finish = 0
    with _llm(server) as llm:
        done = Pipeline(generator=llm).generate(rows, checkpoint=checkpoint)
    assert saved["jobs_ids"] == ["batch-1"] and server.batches.created == 1
    assert [row["generations"] for row in done] == [["echo 0: one"], ["echo 0: two"]]
