"""Limits that hold, and 429 storms ridden out: `RateLimiter` on a clock of our own, then
`OpenAILLM` against the fault server enforcing a limit of its own (`FaultServer.limit`).

Speed is measured in `benchmarks/rate_limits.py`; here the counts are asserted (429s, requests
per row) and the requests' arrival times against the limit, never the wall time."""

from __future__ import annotations

import asyncio
import collections
from typing import Any, Callable, Dict, Iterator, List

import pytest
from echo_async_llm import EchoAsyncLLM
from fault_limits import accepted_in_windows

from distilabel_llm.llm.backends._rate_limits import (
    PACING,
    RateLimiter,
    estimate_tokens,
    parse_duration,
    retry_after_seconds,
)
from distilabel_llm.tasks import TextGenerationTask

openai = pytest.importorskip("openai", reason="the `openai` extra is not installed")

from fault_server import Fault, FaultServer  # noqa: E402

from distilabel_llm.llm.backends.openai import OpenAIAccessError, OpenAILLM  # noqa: E402

MODEL = "fault-model"
FAST = 0.01

MakeLLM = Callable[..., OpenAILLM]


class Clock:
    """A monotonic clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def admit(limiter: RateLimiter, tokens: int = 0) -> Any:
    """A ticket admitted at once (the limiter must owe no wait: nothing here sleeps)."""
    return asyncio.run(asyncio.wait_for(limiter.admit(tokens), timeout=1))


@pytest.fixture
def make_openai_llm(server: FaultServer) -> Iterator[MakeLLM]:
    made: List[OpenAILLM] = []

    def make(**kwargs: Any) -> OpenAILLM:
        kwargs.setdefault("max_retries", 5)
        kwargs.setdefault("timeout", 10.0)
        task = TextGenerationTask(system_prompt="Be brief.")
        llm = OpenAILLM(task, model=MODEL, api_key="test-key", base_url=server.url, **kwargs)
        made.append(llm)
        return llm

    yield make
    for llm in made:
        llm.close()


def rows(count: int) -> List[dict]:
    return [{"input": f"row {i}"} for i in range(count)]


def arrivals(server: FaultServer) -> List[float]:
    return [request.received_at for request in server.requests()]


# The limiter, on a clock of our own.


@pytest.mark.timeout(10)
def test_requests_are_paced_evenly_at_the_limit_less_its_margin() -> None:
    clock = Clock()
    limiter = RateLimiter(requests_per_minute=600, clock=clock)
    interval = 60 / (600 * PACING)
    limiter.succeeded(admit(limiter), None)
    # The next may go a quarter interval early at most: what a late timer may need made up.
    assert limiter.delay(0, clock()) == pytest.approx(interval * 0.75)
    clock.now += interval * 0.85  # late by a tenth: the one after makes it up
    limiter.succeeded(admit(limiter), None)
    assert limiter.delay(0, clock()) == pytest.approx(interval * 0.9)
    clock.now += 10  # idle time saves nothing up beyond that quarter: no burst
    limiter.succeeded(admit(limiter), None)
    assert limiter.delay(0, clock()) == pytest.approx(interval * 0.75)


@pytest.mark.timeout(10)
def test_tokens_are_reserved_then_corrected_from_usage_or_given_back() -> None:
    clock = Clock()
    limiter = RateLimiter(tokens_per_minute=60 * 100 / PACING, clock=clock)  # 100 a second
    first = admit(limiter, tokens=200)
    assert limiter.delay(200, clock()) == pytest.approx(2.0)
    limiter.succeeded(first, tokens_used=50)  # the answer's usage: 150 were never spent
    assert limiter.delay(200, clock()) == pytest.approx(0.5)
    clock.now += 0.5
    second = admit(limiter, tokens=100)
    limiter.failed(second)  # nothing spent: all given back
    assert limiter.delay(100, clock()) == 0
    assert limiter.delay(0, clock()) == 0  # a request reserving no tokens never waits on them


@pytest.mark.timeout(10)
def test_a_burst_of_429s_halves_the_window_once_and_successes_grow_it_back() -> None:
    clock = Clock()
    limiter = RateLimiter(max_concurrency=8, clock=clock)
    burst = [admit(limiter) for _ in range(8)]
    clock.now += 1
    limiter.failed(burst[0], rate_limited=True)
    assert limiter.concurrency == 4
    for ticket in burst[1:4]:  # sent before the cut: the same burst
        limiter.failed(ticket, rate_limited=True)
    assert limiter.concurrency == 4 and limiter.rate_limited == 4
    grown = 4.0
    for ticket in burst[4:]:
        limiter.succeeded(ticket, None)
        grown += 1 / grown  # one more for each window's worth of successes
    assert limiter.concurrency == pytest.approx(grown)
    clock.now += 1
    later = admit(limiter)  # sent after the cut: its 429 is a new burst
    limiter.failed(later, rate_limited=True)
    assert limiter.concurrency == 1  # half of the 1 in flight, and never below 1


@pytest.mark.timeout(10)
def test_retry_after_pauses_every_sender() -> None:
    clock = Clock()
    limiter = RateLimiter(clock=clock)
    limiter.failed(admit(limiter), rate_limited=True, retry_after=2.5)
    assert limiter.delay(0, clock()) == pytest.approx(2.5)
    clock.now += 1
    assert limiter.delay(1000, clock()) == pytest.approx(1.5)


@pytest.mark.timeout(10)
def test_limits_are_learnt_from_headers_and_the_lower_one_holds() -> None:
    clock = Clock()
    limiter = RateLimiter(requests_per_minute=300, clock=clock)
    limiter.learn({"x-ratelimit-limit-requests": "1200", "x-ratelimit-limit-tokens": "90000"})
    assert (limiter.limit("requests"), limiter.limit("tokens")) == (300, 90000)
    limiter.learn({"x-ratelimit-limit-requests": "120"})
    assert limiter.limit("requests") == 120
    # A spent limit holds every request until one more is due: its reset, at most 60/limit.
    limiter.learn({"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "6m0s"})
    assert limiter.delay(0, clock()) == pytest.approx(0.5)
    limiter.learn({"x-ratelimit-remaining-tokens": "0", "x-ratelimit-reset-tokens": "1.5s"})
    assert limiter.delay(0, clock()) == pytest.approx(1.5)


def test_durations_waits_and_token_estimates() -> None:
    assert [parse_duration(text) for text in ("1s", "6m0s", "59.5s", "20ms", "1h2m", "0.25")] == [
        1.0,
        360.0,
        59.5,
        0.02,
        3720.0,
        0.25,
    ]
    assert parse_duration("soon") is None and parse_duration("5 s") is None
    assert retry_after_seconds({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert retry_after_seconds({"retry-after": "2"}) == 2.0
    assert retry_after_seconds({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0
    assert retry_after_seconds({}) is None
    # Conservative: 3 bytes a token, 4 a message, 3 for the answer's priming.
    assert estimate_tokens("abcdefg") == 3 + 4 + 3
    assert estimate_tokens([{"role": "user", "content": "héllo"}, {"role": "system"}]) == 2 + 8 + 3


@pytest.mark.timeout(10)
def test_an_async_llm_checks_its_limits_and_marks_lost_connections_transient() -> None:
    with pytest.raises(ValueError, match="max_requests_per_minute"):
        EchoAsyncLLM(max_requests_per_minute=0)
    with pytest.raises(ValueError, match="max_tokens_per_minute"):
        EchoAsyncLLM(max_tokens_per_minute="many")
    with EchoAsyncLLM(max_retries=2, max_requests_per_minute=60_000) as llm:
        ok, failed = llm.generate([{"input": "ok"}, {"input": "fail"}])
        assert llm.requests.count(("fail", 1, None)) == 3  # ConnectionError: retried twice
    assert "transient" not in ok[0] and failed[0]["transient"] is True


# OpenAILLM against the fault server's own limit.


@pytest.mark.timeout(60)
def test_a_job_at_a_configured_limit_keeps_it_with_almost_no_429s(
    make_openai_llm: MakeLLM, server: FaultServer
) -> None:
    server.limit(requests=20, window=1.0)  # 1200 a minute, counted over any second
    llm = make_openai_llm(max_requests_per_minute=1200, max_concurrency=8)
    generated = llm.generate(rows(40))

    assert all(row[0]["raw_output"] == f"echo 0: row {i}" for i, row in enumerate(generated))
    assert server.rate_limited() <= 2
    times = arrivals(server)
    # Sent at the configured rate: never more than the limit in a second (one late request
    # may meet the next on its way), and evenly, no faster than the limit overall.
    assert accepted_in_windows(times, 1.0) <= 21
    assert (len(times) - 1) / (times[-1] - times[0]) <= 20 * 1.02


@pytest.mark.timeout(60)
def test_without_a_configured_limit_a_429_storm_costs_few_extra_requests(
    make_openai_llm: MakeLLM, server: FaultServer
) -> None:
    server.limit(requests=10, window=0.5)
    llm = make_openai_llm(max_concurrency=16)
    generated = llm.generate(rows(60))

    assert all(row[0]["raw_output"] == f"echo 0: row {i}" for i, row in enumerate(generated))
    # Knowing no rate, the requests in flight when the server's window fills are refused (6 of
    # the first 16, then fewer as the window halves): under one extra request per row, and
    # none made more than 3 retries (about 25 refusals in all, measured).
    assert len(server.requests()) - 60 == server.rate_limited() <= 60
    per_row: Dict[str, int] = collections.Counter(
        request.body["messages"][-1]["content"] for request in server.requests()
    )
    assert max(per_row.values()) <= 4
    assert llm.limits.concurrency < 16 and llm.limits.rate_limited == server.rate_limited()


@pytest.mark.timeout(60)
def test_limits_stated_in_headers_are_learnt_and_kept(
    make_openai_llm: MakeLLM, server: FaultServer
) -> None:
    server.limit(requests=20, window=1.0, headers=True)
    llm = make_openai_llm(max_concurrency=4)
    generated = llm.generate(rows(40))

    assert all(row[0]["raw_output"] is not None for row in generated)
    assert llm.limits.limit("requests") == 1200
    assert server.rate_limited() <= 3  # the first burst, before the limit was known


@pytest.mark.timeout(60)
def test_tokens_per_minute_pace_the_requests_by_their_usage(
    make_openai_llm: MakeLLM, server: FaultServer
) -> None:
    # The fault server counts words: "Be brief." and "row 12" in, "echo 0: row 12" out: 8
    # tokens a request, so 80 a second is 10 requests.
    server.limit(requests=1000, tokens=80, window=1.0)
    llm = make_openai_llm(max_tokens_per_minute=4800, max_concurrency=8, max_new_tokens=20)
    generated = llm.generate(rows(20))

    assert all(row[0]["raw_output"] is not None for row in generated)
    assert server.rate_limited() <= 2
    times = arrivals(server)
    # Each reserved 36 tokens (16 estimated for the prompt, 20 for the answer): corrected to
    # the 8 it used, 10 requests go a second, not 2, and no more.
    assert (len(times) - 1) / (times[-1] - times[0]) <= 10 * 1.02


@pytest.mark.timeout(30)
def test_retry_after_holds_every_sender_not_only_the_refused_one(
    make_openai_llm: MakeLLM, server: FaultServer
) -> None:
    # The first request is refused; the one sent beside it is answered after the refusal
    # reached the client, so its slot frees while the pause holds.
    server.script(Fault(status=429, retry_after=0.6), *[Fault(delay=0.2)] * 6)
    llm = make_openai_llm(max_concurrency=2)
    generated = llm.generate(rows(6))

    assert all(row[0]["raw_output"] is not None for row in generated)
    refused, beside, *later = server.requests()
    assert refused.status == 429 and refused.answered_at is not None
    assert beside.received_at < refused.answered_at + 0.1  # sent together
    assert len(later) == 5  # the 4 other rows and the refused one again
    assert min(r.received_at for r in later) >= refused.answered_at + 0.6 - 0.05


@pytest.mark.timeout(30)
def test_the_clients_own_retries_are_off(make_openai_llm: MakeLLM, server: FaultServer) -> None:
    server.rule("row 0", Fault(status=429, retry_after=FAST))
    llm = make_openai_llm(max_retries=3)
    (row,) = llm.generate(rows(1))

    assert len(server.requests()) == 4  # ours: 1 + 3 retries (with the client's: 16)
    assert row[0]["raw_output"] is None and "failed after 3 retries" in row[0]["error"]


@pytest.mark.timeout(30)
def test_a_transient_failure_marks_its_outputs_transient(
    make_openai_llm: MakeLLM, server: FaultServer
) -> None:
    server.rule("row 0", Fault(status=503, retry_after=FAST))
    server.rule("row 1", Fault(status=400))
    server.rule("row 2", Fault(status=429, retry_after=3600))
    server.rule("row 3", Fault(delay=5))
    generated = make_openai_llm(max_retries=1, timeout=0.2).generate(rows(5), num_generations=2)

    assert [[output.get("transient") for output in row] for row in generated] == [
        [True, True],  # 503, retried once
        [None, None],  # 400: a bad request fails the same way anywhere
        [True, True],  # a Retry-After longer than we wait
        [True, True],  # timed out
        [None, None],
    ]
    assert "failed after 1 retries: InternalServerError" in generated[0][0]["error"]
    assert "longer than the 60 s waited at most, so no retry" in generated[2][0]["error"]
    assert generated[4][0]["raw_output"] == "echo 0: row 4"


@pytest.mark.timeout(30)
def test_fatal_errors_still_raise(make_openai_llm: MakeLLM) -> None:
    with FaultServer(models=[MODEL], api_key="secret") as locked:
        llm = make_openai_llm(validate_model=False)
        llm_locked = OpenAILLM(
            TextGenerationTask(),
            model=MODEL,
            api_key="wrong",
            base_url=locked.url,
            validate_model=False,
            max_requests_per_minute=600,
        )
        try:
            with pytest.raises(OpenAIAccessError, match="AuthenticationError"):
                llm_locked.generate(rows(2))
            assert len(locked.requests()) <= 2  # never retried
        finally:
            llm_locked.close()
        assert llm.generate(rows(1))[0][0]["raw_output"] == "echo 0: row 0"
