"""Offline batch generation through the OpenAI Batch API, against the fault server's fake one:
one job per call, each result on the row whose request it answers (whatever the order) with
failed requests' errors, a run that stops before the job is done followed by a rerun that
fetches it, creating exactly one job, and jobs that are refused, end badly or return broken
lines failing only the rows they did not answer."""

from __future__ import annotations

import io
import json
import pickle
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any, List

import pytest
from rich.console import Console

from distilabel_llm.errors import OfflineBatchNotFinishedError, ProcessLLMError
from distilabel_llm.llm import LLMPool, ProcessLLM
from distilabel_llm.pipeline import Pipeline, read_jsonl
from distilabel_llm.progress import generate_with_progress
from distilabel_llm.tasks import TextGenerationTask
from distilabel_llm.testing import FakeLLM

pytest.importorskip("openai", reason="the `openai` extra is not installed")

from fault_server import FaultServer

from distilabel_llm.llm.backends.openai import OpenAILLM

ROWS = [{"input": "one"}, {"input": "two batch-fail"}, {"input": "three"}]


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


def test_results_find_their_rows_by_request_whatever_the_order(server: FaultServer) -> None:
    with _llm(server) as llm, pytest.raises(OfflineBatchNotFinishedError) as stopped:
        llm.generate(ROWS, num_generations=2)
    # The rows again, in another order, one of them new, fetched with a blocking rerun.
    rows = [ROWS[2], {"input": "four"}, ROWS[0]]
    with _llm(
        server, jobs_ids=stopped.value.jobs_ids, offline_batch_generation_block_until_done=0.01
    ) as llm:
        done = llm.generate(rows, num_generations=2)
    assert _texts(done) == [
        ["echo 0: three", "echo 1: three"],
        [None, None],
        ["echo 0: one", "echo 1: one"],
    ]
    assert "batch-1 holds no request like this row's" in done[1][0]["error"]
    assert "Call again to send it in a new batch job" in done[1][0]["error"]
    assert server.batches.created == 1  # nothing sent anew without being asked


def test_the_error_crosses_processes_and_bad_settings_are_named(server: FaultServer) -> None:
    error = pickle.loads(pickle.dumps(OfflineBatchNotFinishedError(("batch-9",), "validating")))
    assert error.jobs_ids == ("batch-9",) and error.status == "validating"
    with pytest.raises(ValueError, match="positive number of seconds"):
        _llm(server, offline_batch_generation_block_until_done=0)
    with pytest.raises(ValueError, match="leave it unset"):
        _llm(server, num_threads=2)
    with _llm(server) as llm, pytest.raises(NotImplementedError, match="Offline batch"):
        Pipeline(labeller=llm)


@pytest.mark.timeout(60)
def test_batch_jobs_are_refused_in_a_process_or_a_pool(server: FaultServer) -> None:
    # There, an unfinished job's ids would die with the LLM, and a rerun would pay again.
    url = server.url
    process = ProcessLLM(TextGenerationTask(), lambda task: _offline_llm(task, url))
    with process, pytest.raises(ProcessLLMError, match="sends offline batch jobs"):
        process.generate(ROWS).result(timeout=30)
    with _llm(server) as offline, pytest.raises(ValueError, match="not in a process"):
        LLMPool([offline, FakeLLM(TextGenerationTask())])


def _offline_llm(task: Any, url: str) -> OpenAILLM:
    return OpenAILLM(
        task, model="fault-model", base_url=url, api_key="k", use_offline_batch_generation=True
    )


def test_a_pipeline_job_stopped_before_its_batch_is_done_fetches_it_when_run_again(
    server: FaultServer, tmp_path: Path
) -> None:
    checkpoint = tmp_path / "out.jsonl"
    saved = tmp_path / "out.jsonl.batch.json"
    rows = [{"input": f"row {i}"} for i in range(5)]
    job = {"checkpoint": checkpoint, "batch_size": 2, "display_progress_bar": False}
    # No dry run (it would be a job of its own), and no batch_size: one job for the rows left.
    with _llm(server) as llm, pytest.raises(OfflineBatchNotFinishedError) as stopped:
        Pipeline(generator=llm).generate(rows, **job)
    assert f"This Pipeline keeps them in {saved}: run the job again" in str(stopped.value)
    assert json.loads(saved.read_text())["jobs_ids"] == ["batch-1"]
    other_rows = [{"input": f"other {i}"} for i in range(5)]
    with _llm(server) as llm, pytest.raises(ValueError, match="was sent for other rows"):
        Pipeline(generator=llm).generate(other_rows, **job)  # its results would land wrongly
    assert json.loads(saved.read_text())["jobs_ids"] == ["batch-1"]  # still kept
    with _llm(server) as llm:  # the same job, run again by a new process
        done = Pipeline(generator=llm).generate(rows, **job)
    assert [row["generations"] for row in done] == [[f"echo 0: row {i}"] for i in range(5)]
    assert [row["input"] for row in read_jsonl(checkpoint)] == [row["input"] for row in rows]
    assert server.batches.created == 1
    assert not saved.exists()


# The job runs in a process of its own, sent a real SIGINT as Ctrl-C would be.
_JOB = """
import signal
import sys
signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal, even if ignored here
from distilabel_llm.llm.backends.openai import OpenAILLM
from distilabel_llm.pipeline import Pipeline
from distilabel_llm.tasks import TextGenerationTask

llm = OpenAILLM(TextGenerationTask(), model="fault-model", base_url=sys.argv[1], api_key="k",
                use_offline_batch_generation=True, offline_batch_generation_block_until_done=0.01)
try:
    Pipeline(generator=llm).generate([{"input": "one"}, {"input": "two"}], checkpoint=sys.argv[2])
except KeyboardInterrupt:
    sys.exit(130)
"""


@pytest.mark.timeout(60)
def test_ctrl_c_while_waiting_for_the_batch_keeps_its_ids(
    server: FaultServer, tmp_path: Path
) -> None:
    server.batches.checks_to_finish = 10**9
    checkpoint = tmp_path / "out.jsonl"
    job = subprocess.Popen([sys.executable, "-c", _JOB, server.url, str(checkpoint)])
    try:
        assert server.batches.checked_in_progress.wait(30.0), "the job sent no batch job"
        job.send_signal(signal.SIGINT)
        assert job.wait(timeout=30) == 130
    finally:
        job.kill()
        job.wait()
    saved = json.loads((tmp_path / "out.jsonl.batch.json").read_text())
    server.batches.checks_to_finish = 0
    with _llm(server) as llm:
        done = Pipeline(generator=llm).generate(
            [{"input": "one"}, {"input": "two"}], checkpoint=checkpoint
        )
    assert saved["jobs_ids"] == ["batch-1"] and server.batches.created == 1
    assert [row["generations"] for row in done] == [["echo 0: one"], ["echo 0: two"]]


def test_progress_shows_the_jobs_state_and_counts(server: FaultServer, tmp_path: Path) -> None:
    server.batches.checks_to_finish = 3
    console = Console(file=io.StringIO(), force_terminal=False, width=200)
    with _llm(server, offline_batch_generation_block_until_done=0.01) as llm:
        Pipeline(generator=llm).generate(ROWS, checkpoint=tmp_path / "out.jsonl", console=console)
        generate_with_progress(llm, ROWS, num_generations=2, console=console)
    printed = console.file.getvalue()  # type: ignore[attr-defined]
    for job in ("batch-1", "batch-5"):
        assert f"(batch job {job} in_progress: 0/3 requests done)" in printed
        assert f"(batch job {job} completed: 2/3 requests done, 1 failed)" in printed
    assert printed.count("in_progress") == 2  # a line when the state changes, not per check


@pytest.mark.timeout(60)
@pytest.mark.parametrize("fail_fast", [False, True])  # the call's rows fail, or it raises
def test_a_refused_job_fails_its_rows_without_sending_a_job_per_row(
    server: FaultServer, tmp_path: Path, fail_fast: bool
) -> None:
    server.batches.refuse_status = 429
    saved = tmp_path / "out.jsonl.batch.json"
    rows = [{"input": f"row {i}"} for i in range(3)]
    job = {"checkpoint": tmp_path / "out.jsonl", "display_progress_bar": False}
    with _llm(server, fail_fast=fail_fast) as llm:  # not waiting, as when jobs piled up
        done = Pipeline(generator=llm).generate(rows, **job)
        attempts = llm.max_retries + 1
    for row in done:
        assert "did not take the batch job of this call's 3 request(s)" in row["error"]
        assert "429" in row["error"] and "retry later" in row["error"]
    # One job, retried by the client, then given up: none per row, nothing kept to fetch.
    assert len(server.requests("/v1/batches")) == attempts
    assert server.batches.created == 0 and not saved.exists()
    server.batches.refuse_status = None
    with _llm(server, offline_batch_generation_block_until_done=0.01) as llm:
        done = Pipeline(generator=llm).generate(rows, **job)
    assert [row["generations"] for row in done] == [[f"echo 0: row {i}"] for i in range(3)]
    assert server.batches.created == 1


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("state", "detail"),
    [
        ("expired", "could not be executed before the completion window expired"),
        ("cancelled", "not executed because the batch was cancelled"),
        ("failed", "token_limit_exceeded: Enqueued token limit reached"),
    ],
)
def test_a_job_that_ended_badly_keeps_what_it_did_and_the_rerun_sends_the_rest(
    server: FaultServer, tmp_path: Path, state: str, detail: str
) -> None:
    server.batches.end_as = state  # an expired or cancelled job answered its first request
    kept = 0 if state == "failed" else 1
    saved = tmp_path / "out.jsonl.batch.json"
    rows = [{"input": f"row {i}"} for i in range(3)]
    job = {"checkpoint": tmp_path / "out.jsonl", "display_progress_bar": False}
    with _llm(server, offline_batch_generation_block_until_done=0.01) as llm:
        done = Pipeline(generator=llm).generate(rows, **job)
    assert [row["generations"] for row in done[:kept]] == [["echo 0: row 0"]][:kept]
    for row in done[kept:]:
        assert f"batch job batch-1 ended {state!r}" in row["error"] and detail in row["error"]
    assert not saved.exists()  # the dead job is not fetched again by every rerun
    server.batches.end_as = "completed"
    with _llm(server, offline_batch_generation_block_until_done=0.01) as llm:
        done = Pipeline(generator=llm).generate(rows, **job)
    assert [row["generations"] for row in done] == [[f"echo 0: row {i}"] for i in range(3)]
    (_, second) = server.batches.jobs
    resent = server.batches.requests(second)
    assert [line["body"]["messages"][-1]["content"] for line in resent] == [
        f"row {i}" for i in range(kept, 3)
    ]


def test_an_unreadable_output_file_fails_its_rows_and_names_the_job_to_retry(
    server: FaultServer,
) -> None:
    server.batches.lose_output = True
    with _llm(server, offline_batch_generation_block_until_done=0.01) as llm:
        done = llm.generate(ROWS)
        assert llm.jobs_ids is None  # not fetched again by the next call
    assert _texts(done) == [[None], [None], [None]]
    assert "could not be read" in done[0][0]["error"]
    assert "pass jobs_ids=('batch-1',) to retry" in done[0][0]["error"]
    assert "the fake batch failed this request" in done[1][0]["error"]  # its error file is read
    server.batches.lose_output = False
    with _llm(server, jobs_ids=("batch-1",)) as llm:
        done = llm.generate(ROWS)
    assert _texts(done) == [["echo 0: one"], [None], ["echo 0: three"]]
    assert server.batches.created == 1


def test_a_malformed_output_line_fails_only_its_own_row(server: FaultServer) -> None:
    rows = [
        {"input": "one"},
        {"input": "two batch-garble"},  # its line cut short: its custom_id is still readable
        {"input": "three batch-noise"},  # its line names no request at all
        {"input": "four"},
    ]
    with _llm(server, offline_batch_generation_block_until_done=0.01) as llm:
        done = llm.generate(rows)
    assert _texts(done) == [["echo 0: one"], [None], [None], ["echo 0: four"]]
    assert "batch job batch-1 returned a malformed line for this request" in done[1][0]["error"]
    assert (
        "batch-1 returned 1 output line(s) naming no request, e.g. '<html>" in done[2][0]["error"]
    )
