"""`OpenAILLM` against real HTTP servers: our fault-injecting one and llama-cpp-python's."""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterator, List

import pytest

from distilabel_llm.errors import (
    GenerationSettingsError,
    MissingExtraError,
    ModelUnavailableError,
)
from distilabel_llm.tasks import TextGenerationTask

openai = pytest.importorskip("openai", reason="the `openai` extra is not installed")

from fault_server import Fault, FaultServer  # noqa: E402

from distilabel_llm.llm.backends._openai_client import read_completion  # noqa: E402
from distilabel_llm.llm.backends.openai import (  # noqa: E402
    OpenAIAccessError,
    OpenAILLM,
    OpenAIRequestError,
)

MODEL = "fault-model"
# Faults answered with a tiny Retry-After so retries cost milliseconds, not the client's backoff.
FAST = 0.01

MakeLLM = Callable[..., OpenAILLM]


@pytest.fixture
def make_openai_llm(server: FaultServer) -> Iterator[MakeLLM]:
    """Builds `OpenAILLM`s aimed at `server` by default, and closes them all afterwards."""
    made: List[OpenAILLM] = []

    def make(**kwargs: Any) -> OpenAILLM:
        kwargs.setdefault("model", MODEL)
        if "client" not in kwargs:
            kwargs.setdefault("api_key", "test-key")
            kwargs.setdefault("base_url", server.url)
        kwargs.setdefault("max_retries", 2)
        kwargs.setdefault("timeout", 10.0)
        llm = OpenAILLM(TextGenerationTask(system_prompt="Be brief."), **kwargs)
        made.append(llm)
        return llm

    yield make
    for llm in made:
        llm.close()


def rows(*texts: str) -> List[dict]:
    return [{"input": text} for text in texts]


def raw_outputs(generated: List[List[dict]]) -> List[List[Any]]:
    return [[output["raw_output"] for output in row] for row in generated]


# Requests, prompts and outputs.


def test_sends_openai_messages_and_returns_outputs_with_statistics(
    make_openai_llm: MakeLLM, server: FaultServer
) -> None:
    llm = make_openai_llm(max_new_tokens=7, temperature=0.5, top_p=0.9, frequency_penalty=0.1)
    generated = llm.generate(rows("hello there", "two"))

    assert raw_outputs(generated) == [["echo 0: hello there"], ["echo 0: two"]]
    first = generated[0][0]
    assert first["model_name"] == MODEL
    assert first["prompt_used"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hello there"},
    ]
    assert first["parsed_output"] == {"generations": "echo 0: hello there"}
    # The fault server counts words: "Be brief." + "hello there" in, "echo 0: hello there" out.
    assert first["statistics"] == {"input_tokens": 4, "output_tokens": 4}
    body = server.requests()[0].body
    assert body["model"] == MODEL
    assert (body["max_tokens"], body["temperature"], body["top_p"]) == (7, 0.5, 0.9)
    assert body["frequency_penalty"] == 0.1 and "n" not in body


def test_extra_body_is_sent_with_every_request(
    make_openai_llm: MakeLLM, server: FaultServer
) -> None:
    llm = make_openai_llm(extra_body={"repeat_penalty": 1.0, "top_k": 1})
    llm.generate(rows("a", "b"))
    assert [(r.body["repeat_penalty"], r.body["top_k"]) for r in server.requests()] == [
        (1.0, 1)
    ] * 2


def test_string_prompts_are_sent_as_one_user_message(
    make_openai_llm: MakeLLM, server: FaultServer
) -> None:
    llm = make_openai_llm(prompt_format="chatml")
    llm.generate(rows("hi"))
    (message,) = server.requests()[0].body["messages"]
    assert message["role"] == "user" and message["content"].startswith("<|im_start|>system")


def test_num_generations_asks_for_n_choices_in_one_request(
    make_openai_llm: MakeLLM, server: FaultServer
) -> None:
    generated = make_openai_llm().generate(rows("x"), num_generations=3)

    assert raw_outputs(generated) == [["echo 0: x", "echo 1: x", "echo 2: x"]]
    assert [r.body["n"] for r in server.requests()] == [3]
    # 9 completion words over 3 choices; the prompt's 3 words for each.
    assert [o["statistics"] for o in generated[0]] == [{"input_tokens": 3, "output_tokens": 3}] * 3


def test_usage_is_split_evenly_over_choices_remainder_first() -> None:
    completion = openai.types.chat.ChatCompletion.model_validate(
        {
            "id": "c",
            "object": "chat.completion",
            "created": 0,
            "model": MODEL,
            "choices": [
                {
                    "index": k,
                    "message": {"role": "assistant", "content": f"t{k}"},
                    "finish_reason": "stop",
                }
                for k in range(3)
            ],
            "usage": {"prompt_tokens": 5, "completion_tokens": 8, "total_tokens": 13},
        }
    )
    choices = read_completion(completion)
    assert [text for text, _, _ in choices] == ["t0", "t1", "t2"]
    assert [statistics for _, statistics, _ in choices] == [
        {"input_tokens": 5, "output_tokens": 3},
        {"input_tokens": 5, "output_tokens": 3},
        {"input_tokens": 5, "output_tokens": 2},
    ]
    assert [error for _, _, error in choices] == [None, None, None]


def test_choices_missing_from_a_response_are_topped_up(
    make_openai_llm: MakeLLM, server: FaultServer
) -> None:
    server.max_choices = 1  # as llama-cpp-python's server does for any `n`
    generated = make_openai_llm().generate(rows("a", "b"), num_generations=3)

    assert [len(row) for row in generated] == [3, 3]
    assert raw_outputs(generated) == [["echo 0: a"] * 3, ["echo 0: b"] * 3]
    for text in ("a", "b"):
        asked = [
            r.body.get("n") for r in server.requests() if r.body["messages"][-1]["content"] == text
        ]
        assert asked == [3, 2, None]


def test_a_server_rejecting_n_gets_one_request_per_generation(
    make_openai_llm: MakeLLM, server: FaultServer
) -> None:
    server.script(Fault(status=400, param="n"))
    generated = make_openai_llm().generate(rows("a", "b"), num_generations=2)

    assert [len(row) for row in generated] == [2, 2]
    assert [r.body.get("n") for r in server.requests()] == [2, None, None, None, None]


# Retries and failures.


def test_429_is_retried_after_the_retry_after_delay(
    make_openai_llm: MakeLLM, server: FaultServer
) -> None:
    # Longer than the client's own first backoff (at most 0.5 s), so honouring it shows.
    server.script(Fault(status=429, retry_after=0.8))
    generated = make_openai_llm().generate(rows("a"))

    assert raw_outputs(generated) == [["echo 0: a"]]
    refused, accepted = server.requests()
    assert refused.answered_at is not None
    assert accepted.received_at - refused.answered_at >= 0.8


def test_server_errors_and_dropped_connections_are_retried(
    make_openai_llm: MakeLLM, server: FaultServer
) -> None:
    server.script(
        Fault(drop=True), Fault(status=500, retry_after=FAST), Fault(status=503, retry_after=FAST)
    )
    generated = make_openai_llm(max_retries=3).generate(rows("a"))

    assert raw_outputs(generated) == [["echo 0: a"]]
    assert len(server.requests()) == 4


def test_a_row_whose_retries_are_spent_comes_back_empty_and_logged(
    make_openai_llm: MakeLLM, server: FaultServer, caplog: pytest.LogCaptureFixture
) -> None:
    server.rule("bad", Fault(status=500, retry_after=FAST))
    with caplog.at_level(logging.ERROR, logger="distilabel_llm"):
        generated = make_openai_llm(max_retries=2).generate(
            rows("good", "bad", "fine"), num_generations=2
        )

    assert raw_outputs(generated) == [
        ["echo 0: good", "echo 1: good"],
        [None, None],
        ["echo 0: fine", "echo 1: fine"],
    ]
    assert generated[1][0]["prompt_used"][-1] == {"role": "user", "content": "bad"}
    assert sum("bad" in r.body["messages"][-1]["content"] for r in server.requests()) == 3
    assert "failed after 2 retries" in caplog.text and "InternalServerError" in caplog.text


def test_fail_fast_raises_the_error_once_retries_are_spent(
    make_openai_llm: MakeLLM, server: FaultServer
) -> None:
    server.rule("bad", Fault(status=429, retry_after=FAST))
    llm = make_openai_llm(max_retries=1, fail_fast=True)
    with pytest.raises(OpenAIRequestError, match=r"failed after 1 retries: RateLimitError"):
        llm.generate(rows("bad"))
    assert len(server.requests()) == 2


@pytest.mark.timeout(20)
def test_fail_fast_cancels_the_rows_still_in_flight(
    make_openai_llm: MakeLLM, server: FaultServer
) -> None:
    server.rule("slow", Fault(delay=60))
    server.rule("bad", Fault(status=500))
    llm = make_openai_llm(max_retries=0, timeout=60.0, fail_fast=True, max_concurrency=2)
    with pytest.raises(OpenAIRequestError, match="InternalServerError"):
        llm.generate(rows("slow", "bad"))  # returns at once: does not wait for "slow"


def test_a_slow_response_times_out_and_is_retried(
    make_openai_llm: MakeLLM, server: FaultServer, caplog: pytest.LogCaptureFixture
) -> None:
    server.rule("slow", Fault(delay=30))
    with caplog.at_level(logging.ERROR, logger="distilabel_llm"):
        generated = make_openai_llm(timeout=0.2, max_retries=1).generate(rows("slow", "quick"))

    assert raw_outputs(generated) == [[None], ["echo 0: quick"]]
    assert sum(r.body["messages"][-1]["content"] == "slow" for r in server.requests()) == 2
    assert "APITimeoutError" in caplog.text
    assert "APITimeoutError" in generated[0][0]["error"]
    assert "error" not in generated[1][0]


def test_a_retry_after_longer_than_the_client_waits_is_reported_as_no_retry(
    make_openai_llm: MakeLLM, server: FaultServer
) -> None:
    server.rule("later", Fault(status=429, retry_after=3600))
    generated = make_openai_llm(max_retries=2).generate(rows("later", "now"))

    assert raw_outputs(generated) == [[None], ["echo 0: now"]]
    error = generated[0][0]["error"]
    assert "the server asked to wait 3600 s with Retry-After" in error
    assert "no retry was made" in error and "after 2 retries" not in error
    assert sum(r.body["messages"][-1]["content"] == "later" for r in server.requests()) == 1


def test_a_content_that_is_not_text_fails_its_row(
    make_openai_llm: MakeLLM, server: FaultServer
) -> None:
    server.rule("number", Fault(content=42))
    generated = make_openai_llm().generate(rows("number", "ok"))

    assert raw_outputs(generated) == [[None], ["echo 0: ok"]]
    error = generated[0][0]["error"]
    assert "the server returned content of type int for this choice, not text: 42" in error


@pytest.mark.parametrize("count", ["many", 2.5, -1, None])
def test_a_usage_count_that_is_no_count_is_dropped_and_the_text_kept(
    make_openai_llm: MakeLLM, server: FaultServer, count: Any
) -> None:
    server.rule("odd", Fault(usage={"completion_tokens": count}))
    generated = make_openai_llm().generate(rows("odd"), num_generations=2)

    assert raw_outputs(generated) == [["echo 0: odd", "echo 1: odd"]]
    assert [output["statistics"] for output in generated[0]] == [{"input_tokens": 3}] * 2
    assert all("error" not in output for output in generated[0])


def test_malformed_json_fails_only_its_row(make_openai_llm: MakeLLM, server: FaultServer) -> None:
    server.rule("broken", Fault(malformed=True))
    generated = make_openai_llm().generate(rows("broken", "ok"))

    assert raw_outputs(generated) == [[None], ["echo 0: ok"]]


def test_generations_received_before_a_failure_are_kept(
    make_openai_llm: MakeLLM, server: FaultServer
) -> None:
    server.script(Fault(choices=1), Fault(status=500))
    generated = make_openai_llm(max_retries=0).generate(rows("a"), num_generations=3)

    assert raw_outputs(generated) == [["echo 0: a", None, None]]


def test_a_rejected_key_raises_even_without_fail_fast(make_openai_llm: MakeLLM) -> None:
    with FaultServer(models=[MODEL], api_key="secret") as locked:
        llm = make_openai_llm(base_url=locked.url, api_key="wrong", validate_model=False)
        with pytest.raises(OpenAIAccessError, match="AuthenticationError") as raised:
            llm.generate(rows("a", "b"))
        assert isinstance(raised.value, ModelUnavailableError)  # a Pipeline stops on it
        with pytest.raises(OpenAIRequestError, match="rejected the API key"):
            make_openai_llm(base_url=locked.url, api_key="wrong")


# Construction.


def test_a_missing_key_fails_at_construction(
    server: FaultServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ValueError, match="OPENAI_API_KEY"):
        OpenAILLM(TextGenerationTask(), model=MODEL, base_url=server.url)
    assert server.requests("/v1/models") == []


def test_the_key_comes_from_the_environment(
    make_openai_llm: MakeLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "from-env")
    with FaultServer(models=[MODEL], api_key="from-env") as locked:
        llm = make_openai_llm(base_url=locked.url, api_key=None)
        assert raw_outputs(llm.generate(rows("a"))) == [["echo 0: a"]]


def test_an_unknown_model_is_refused_naming_the_served_ones(make_openai_llm: MakeLLM) -> None:
    with pytest.raises(ValueError, match=r"does not serve model 'gpt-nope'.*'fault-model'"):
        make_openai_llm(model="gpt-nope")


def test_a_server_without_a_model_list_is_accepted(make_openai_llm: MakeLLM) -> None:
    with FaultServer(models=None) as bare:
        llm = make_openai_llm(base_url=bare.url, model="anything")
        assert raw_outputs(llm.generate(rows("a"))) == [["echo 0: a"]]
        assert len(bare.requests("/v1/models")) == 1


def test_an_unreachable_server_is_a_clear_error(make_openai_llm: MakeLLM) -> None:
    with pytest.raises(OpenAIRequestError, match=r"Could not reach .* Is the server running"):
        make_openai_llm(base_url=f"http://127.0.0.1:{_free_port()}/v1")


def test_a_sync_client_is_accepted(make_openai_llm: MakeLLM, server: FaultServer) -> None:
    client = openai.OpenAI(api_key="test-key", base_url=server.url)
    llm = make_openai_llm(client=client)
    assert raw_outputs(llm.generate(rows("a"))) == [["echo 0: a"]]
    assert llm.max_retries == 2


def test_missing_openai_raises_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "openai", None)
    with pytest.raises(MissingExtraError, match=r"pip install 'distilabel_llm\[openai\]'"):
        OpenAILLM(TextGenerationTask(), api_key="x")


def test_close_is_idempotent_and_stops_the_loop_thread(make_openai_llm: MakeLLM) -> None:
    llm = make_openai_llm()
    llm.generate(rows("a"))
    llm.close()
    llm.close()
    assert not [t for t in threading.enumerate() if t.name.startswith("OpenAILLM-")]
    with pytest.raises(RuntimeError, match="closed"):
        llm.generate(rows("a"))


# Concurrency.


def test_without_concurrency_options_rows_are_sent_one_at_a_time(
    make_openai_llm: MakeLLM, server: FaultServer
) -> None:
    make_openai_llm().generate(rows("a", "b", "c", "d"))
    assert server.max_in_flight == 1


def test_num_threads_returns_a_future_and_runs_rows_concurrently(
    make_openai_llm: MakeLLM, server: FaultServer
) -> None:
    server.hold_until_concurrent(4)  # every request waits until 4 are in flight together
    future = make_openai_llm(num_threads=4).generate(rows(*"abcdefgh"), num_generations=2)

    assert isinstance(future, Future)
    assert raw_outputs(future.result(timeout=30)) == [
        [f"echo 0: {c}", f"echo 1: {c}"] for c in "abcdefgh"
    ]
    assert server.max_in_flight == 4


def test_max_concurrency_keeps_many_requests_in_flight_on_few_threads(
    make_openai_llm: MakeLLM, server: FaultServer
) -> None:
    snapshots: List[List[str]] = []
    server.hold_until_concurrent(50, action=lambda: snapshots.append(_client_threads()))
    generated = make_openai_llm(max_concurrency=50).generate(rows(*(f"r{i}" for i in range(200))))

    assert raw_outputs(generated) == [[f"echo 0: r{i}"] for i in range(200)]
    assert server.max_in_flight == 50
    # 50 requests in flight with only the pytest thread, the loop thread and asyncio's small
    # resolver pool on the client side.
    assert snapshots and max(len(names) for names in snapshots) <= 10, snapshots


def test_generate_works_inside_a_running_event_loop_and_from_threads(
    make_openai_llm: MakeLLM,
) -> None:
    llm = make_openai_llm(max_concurrency=4)

    async def from_coroutine() -> Any:
        return llm.generate(rows("in-loop"))

    assert raw_outputs(asyncio.run(from_coroutine())) == [["echo 0: in-loop"]]
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(lambda text: llm.generate(rows(text)), ["t1", "t2", "t3"]))
    assert [raw_outputs(result) for result in results] == [
        [[f"echo 0: {t}"]] for t in ("t1", "t2", "t3")
    ]


@pytest.mark.timeout(60)
def test_works_inside_a_process_llm(server: FaultServer) -> None:
    from distilabel_llm.llm.members.process import ProcessLLM

    load = functools.partial(
        OpenAILLM, model=MODEL, api_key="test-key", base_url=server.url, max_concurrency=4
    )
    with ProcessLLM(TextGenerationTask(), load) as llm:
        generated = llm.generate(rows("a", "b"), num_generations=2).result(timeout=30)

    assert raw_outputs(generated) == [["echo 0: a", "echo 1: a"], ["echo 0: b", "echo 1: b"]]
    assert generated[0][0]["statistics"]["input_tokens"] > 0


# Against llama-cpp-python's OpenAI-compatible server serving the tiny GGUF.

LLAMA_ALIAS = "tiny-llama"
GREEDY = {"temperature": 0.0, "extra_body": {"repeat_penalty": 1.0}, "max_new_tokens": 12}


@pytest.fixture(scope="module")
def llama_server(tiny_models: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`python -m llama_cpp.server` on a free port; yields its base URL; always terminated."""
    pytest.importorskip("llama_cpp.server.app", reason="llama-cpp-python[server] is not installed")
    port = _free_port()
    log_path = tmp_path_factory.mktemp("llama-server") / "server.log"
    command = [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(tiny_models.gguf_path), "--model_alias", LLAMA_ALIAS,
        "--host", "127.0.0.1", "--port", str(port),
        "--n_ctx", "1024", "--n_threads", "2", "--verbose", "False",
    ]  # fmt: skip
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}/v1"
        _wait_until_serving(url, process, log_path, deadline_s=60.0)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def make_llama_llm(llama_server: str) -> Iterator[MakeLLM]:
    made: List[OpenAILLM] = []

    def make(**kwargs: Any) -> OpenAILLM:
        settings = {
            "model": LLAMA_ALIAS,
            "api_key": "none",
            "base_url": llama_server,
            "max_retries": 0,
            "timeout": 30.0,
            **GREEDY,
            **kwargs,
        }
        llm = OpenAILLM(TextGenerationTask(system_prompt="Be brief."), **settings)
        made.append(llm)
        return llm

    yield make
    for llm in made:
        llm.close()


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_llama_server_greedy_outputs_match_llama_cpp_called_directly(
    make_llama_llm: MakeLLM, llama_model: Any
) -> None:
    texts = ["Write a short poem about the sea.", "What is the capital of France?"]
    generated = make_llama_llm().generate(rows(*texts))

    for text, (output,) in zip(texts, generated):
        assert output["prompt_used"][-1] == {"role": "user", "content": text}
        expected = llama_model.create_chat_completion(
            messages=output["prompt_used"], temperature=0.0, repeat_penalty=1.0, max_tokens=12
        )
        assert output["raw_output"] == expected["choices"][0]["message"]["content"]
        assert output["statistics"] == {
            "input_tokens": expected["usage"]["prompt_tokens"],
            "output_tokens": expected["usage"]["completion_tokens"],
        }


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_llama_server_returns_num_generations_for_every_row_on_every_path(
    make_llama_llm: MakeLLM,
) -> None:
    inputs = rows("Explain why the sky is blue.", "How many days are in a week?", "Hello")
    sequential = make_llama_llm().generate(inputs, num_generations=2)
    threaded = make_llama_llm(num_threads=2).generate(inputs, num_generations=2).result(timeout=60)
    concurrent = make_llama_llm(max_concurrency=3).generate(inputs, num_generations=2)

    assert [len(row) for row in sequential] == [2, 2, 2]
    for row in sequential:  # greedy: the topped-up generation equals the first
        assert row[0]["raw_output"] is not None
        assert row[0]["raw_output"] == row[1]["raw_output"]
    assert raw_outputs(threaded) == raw_outputs(sequential)
    assert raw_outputs(concurrent) == raw_outputs(sequential)


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_llama_server_model_list_is_checked(make_llama_llm: MakeLLM) -> None:
    with pytest.raises(ValueError, match=f"'{LLAMA_ALIAS}'"):
        make_llama_llm(model="gpt-4o")


# Helpers.


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _client_threads() -> List[str]:
    """Names of this process's threads, less the fault server's own."""
    return [
        thread.name
        for thread in threading.enumerate()
        if "process_request_thread" not in thread.name and thread.name != "fault-server"
    ]


def _wait_until_serving(
    url: str, process: subprocess.Popen, log_path: Path, deadline_s: float
) -> None:
    """Polls `GET /models` until it answers, the server exits, or the deadline passes."""
    probe = openai.OpenAI(api_key="none", base_url=url, max_retries=0, timeout=2.0)
    deadline = time.monotonic() + deadline_s
    try:
        while time.monotonic() < deadline:
            try:
                probe.models.list()
                return
            except openai.APIConnectionError:
                pass
            try:  # the pause between polls doubles as the check that the server is alive
                process.wait(timeout=0.1)
            except subprocess.TimeoutExpired:
                continue
            break
    finally:
        probe.close()
    log = log_path.read_text(errors="replace")[-2000:]
    raise RuntimeError(f"llama_cpp.server did not start serving at {url}:\n{log}")


# What a failed row tells.


def test_a_choice_with_null_content_says_why(make_openai_llm: MakeLLM, server: FaultServer) -> None:
    server.rule("refuse me", Fault(null_content=True))
    generated = make_openai_llm().generate(rows("refuse me", "fine"))
    refused, fine = generated[0][0], generated[1][0]
    assert refused["raw_output"] is None
    assert "no text for this choice" in refused["error"] and "content_filter" in refused["error"]
    assert fine["raw_output"] == "echo 0: fine" and "error" not in fine


def test_a_password_in_the_base_url_never_shows(
    make_openai_llm: MakeLLM, server: FaultServer, caplog: pytest.LogCaptureFixture
) -> None:
    server.script(Fault(status=500), Fault(status=500))
    url = server.url.replace("http://", "http://alice:hunter2@")
    with caplog.at_level(logging.INFO, logger="distilabel_llm"):
        llm = make_openai_llm(base_url=url, max_retries=1)
        generated = llm.generate(rows("a"))
    error = generated[0][0]["error"]
    assert "alice:***@" in error and "hunter2" not in error
    assert "hunter2" not in caplog.text and "hunter2" not in repr(llm)


# Generation settings.


def test_generation_settings_reach_the_request_body(
    make_openai_llm: MakeLLM, server: FaultServer
) -> None:
    server.max_choices = 1  # one choice per request: the top-ups show each slot's seed
    llm = make_openai_llm(generation_kwargs={"seed": 10, "temperature": 0.9})
    llm.generate(
        rows("a"),
        num_generations=2,
        generation_kwargs={
            "temperature": 0.3,
            "stop": "END",
            "max_new_tokens": 7,
            "generation_offset": 4,
        },
    )
    bodies = [request.body for request in server.requests()]
    assert [body["seed"] for body in bodies] == [14, 15]  # slots 4 and 5
    for body in bodies:
        assert body["temperature"] == 0.3 and body["stop"] == ["END"] and body["max_tokens"] == 7
        assert "generation_offset" not in body and "max_new_tokens" not in body
    with pytest.raises(ValueError, match="not one OpenAILLM takes"):
        llm.generate(rows("a"), generation_kwargs={"top_k": 3})


def test_nan_and_infinities_are_refused_before_any_request(
    make_openai_llm: MakeLLM, server: FaultServer
) -> None:
    # JSON has no NaN: the server would refuse every row ("Out of range float values...").
    with pytest.raises(GenerationSettingsError, match="`temperature` cannot be inf"):
        make_openai_llm(temperature=math.inf)
    llm = make_openai_llm()
    for settings in (
        {"top_p": math.nan},
        {"frequency_penalty": -math.inf},
        {"extra_body": {"min_p": math.nan}},
        {"structured_output": {"type": "number", "maximum": math.inf}},
    ):
        with pytest.raises(GenerationSettingsError, match="cannot be"):
            llm.generate(rows("a"), generation_kwargs=settings)
    assert server.requests() == []


# Structured output.

VERDICT_SCHEMA = {
    "type": "object",
    "properties": {
        "score": {"type": "integer", "enum": list(range(1, 11))},
        "mood": {"type": "string", "enum": ["happy", "sad", "calm"]},
    },
    "required": ["score", "mood"],
}


def test_structured_output_reaches_the_server_in_each_mode(
    make_openai_llm: MakeLLM, server: FaultServer
) -> None:
    settings = {"structured_output": VERDICT_SCHEMA}
    make_openai_llm().generate(rows("a"), generation_kwargs=settings)
    make_openai_llm(structured_output_mode="json_object").generate(
        rows("a"), generation_kwargs=settings
    )
    guided = make_openai_llm(structured_output_mode="extra_body")
    guided.generate(rows("a"), generation_kwargs={"structured_output": ["yes", "no"]})
    first, second, third = (request.body for request in server.requests())
    assert first["response_format"]["type"] == "json_schema"
    assert first["response_format"]["json_schema"]["schema"] == VERDICT_SCHEMA
    assert second["response_format"] == {"type": "json_object", "schema": VERDICT_SCHEMA}
    assert third["guided_choice"] == ["yes", "no"]  # extra_body fields go in the body
    with pytest.raises(ValueError, match="structured_output_mode='extra_body'"):
        make_openai_llm().generate(rows("a"), generation_kwargs={"structured_output": "[a-z]+"})


def test_an_answer_that_is_not_the_structured_output_says_why(make_openai_llm: MakeLLM) -> None:
    (output,) = make_openai_llm().generate(
        rows("a"), generation_kwargs={"structured_output": VERDICT_SCHEMA}
    )[0]
    assert output["raw_output"] == "echo 0: a" and output["parsed_output"] is None
    assert "not the structured output asked for" in output["error"]


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_llama_server_answers_in_the_schema(make_llama_llm: MakeLLM) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    llm = make_llama_llm(structured_output_mode="json_object", temperature=1.0, max_new_tokens=48)
    generated = llm.generate(
        rows("How are you?", "What now?"),
        num_generations=2,
        generation_kwargs={"structured_output": VERDICT_SCHEMA},
    )
    for row in generated:
        for output in row:
            jsonschema.validate(output["parsed_output"], VERDICT_SCHEMA)


def test_generate_outputs_sends_conversations_as_they_are(
    make_openai_llm: MakeLLM, server: FaultServer
) -> None:
    server.rule("broken", Fault(malformed=True))
    conversation = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "ok"},
    ]
    results = make_openai_llm().generate_outputs(
        [conversation, [{"role": "user", "content": "broken"}]], num_generations=2
    )

    assert server.requests()[0].body["messages"] == conversation
    assert results[0]["generations"] == ["echo 0: ok", "echo 1: ok"]
    assert results[0]["errors"] == [None, None]
    assert results[1]["generations"] == [None, None]
    assert all(results[1]["errors"])  # why each is missing
    assert set(results[0]["statistics"]) == {"input_tokens", "output_tokens"}
