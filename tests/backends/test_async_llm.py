"""`AsyncLLM`: a backend's `agenerate` coroutines run together on the LLM's own loop, bounded,
topped up, seeded per slot, failing per row; from plain code, a running event loop and a child
process alike."""

from __future__ import annotations

import asyncio
import functools
from typing import Any

import pytest
from echo_async_llm import EchoAsyncLLM, SingleAsyncLLM

from distilabel_llm import TextGenerationTask
from distilabel_llm.llm import AsyncLLM, ProcessLLM

ROWS = [{"input": f"row {i}"} for i in range(10)]


def _texts(rows: Any) -> list:
    return [[output["raw_output"] for output in row] for row in rows]


def test_rows_run_together_up_to_max_concurrency() -> None:
    with EchoAsyncLLM(max_concurrency=3) as llm:
        rows = llm.generate(ROWS)
        assert llm.most_in_flight == 3
    assert _texts(rows) == [[f"echo 0: row {i}"] for i in range(10)]
    with EchoAsyncLLM() as llm:  # no max_concurrency: a call's rows one after another
        llm.generate(ROWS)
        assert llm.most_in_flight == 1


def test_each_generation_slot_gets_its_own_seed() -> None:
    with EchoAsyncLLM(generation_kwargs={"seed": 10}) as llm:
        rows = llm.generate(ROWS[:1], num_generations=3)
        assert llm.requests == [("row 0", 3, 10)]
    assert _texts(rows) == [["echo 10: row 0", "echo 11: row 0", "echo 12: row 0"]]
    with SingleAsyncLLM(generation_kwargs={"seed": 10}) as llm:
        rows = llm.generate(ROWS[:1], num_generations=3, generation_kwargs={"seed": 20})
        assert sorted(llm.requests) == [("row 0", 1, 20), ("row 0", 1, 21), ("row 0", 1, 22)]
    assert _texts(rows) == [["echo 20: row 0", "echo 21: row 0", "echo 22: row 0"]]


def test_fewer_generations_than_asked_are_topped_up() -> None:
    with EchoAsyncLLM(short=True, generation_kwargs={"seed": 0}) as llm:
        rows = llm.generate(ROWS[:1], num_generations=3)
        assert llm.requests == [("row 0", 3, 0), ("row 0", 2, 1), ("row 0", 1, 2)]
    assert _texts(rows) == [["echo 0: row 0", "echo 1: row 0", "echo 2: row 0"]]
    assert rows[0][0]["statistics"] == {"input_tokens": 5, "output_tokens": 2}


def test_a_failed_request_fails_its_row_only_and_says_why() -> None:
    rows = [{"input": "ok"}, {"input": "fail here"}, {"input": "none"}]
    with EchoAsyncLLM(max_concurrency=4) as llm:
        generated = llm.generate(rows, num_generations=2)
    assert _texts(generated)[0] == ["echo 0: ok", "echo 1: ok"]
    assert _texts(generated)[1:] == [[None, None], [None, None]]
    assert "the server dropped 'fail here'" in generated[1][0]["error"]
    assert "agenerate returned None" in generated[2][0]["error"]
    with EchoAsyncLLM(fail_fast=True) as llm, pytest.raises(ConnectionError, match="dropped"):
        llm.generate(rows)


def test_an_answer_of_the_wrong_shape_is_named() -> None:
    class Wrong(EchoAsyncLLM):
        async def agenerate(self, input: Any, num_generations: int = 1, **settings: Any) -> Any:
            return "a bare string"

    with Wrong() as llm:
        (row,) = llm.generate(ROWS[:1])
    assert "must return a list of texts or a dict" in row[0]["error"]


def test_a_request_cancelling_itself_fails_its_row_only() -> None:
    class SelfCancelling(EchoAsyncLLM):
        async def agenerate(self, input: Any, num_generations: int = 1, **settings: Any) -> Any:
            if "cancel" in input[-1]["content"]:
                raise asyncio.CancelledError  # as a client cancelling its own request does
            return await super().agenerate(input, num_generations, **settings)

    rows = [{"input": "ok"}, {"input": "cancel me"}, {"input": "fine"}]
    with SelfCancelling(max_concurrency=3) as llm:
        generated = llm.generate(rows, num_generations=2)
    assert _texts(generated) == [
        ["echo 0: ok", "echo 1: ok"],
        [None, None],
        ["echo 0: fine", "echo 1: fine"],
    ]
    assert "agenerate raised asyncio.CancelledError" in generated[1][0]["error"]


@pytest.mark.timeout(20)
def test_fail_fast_still_cancels_the_requests_in_flight() -> None:
    class Stuck(EchoAsyncLLM):
        async def agenerate(self, input: Any, num_generations: int = 1, **settings: Any) -> Any:
            if "stuck" in input[-1]["content"]:
                await asyncio.Event().wait()  # never set: only a cancellation ends it
            return await super().agenerate(input, num_generations, **settings)

    with (
        Stuck(max_concurrency=2, fail_fast=True) as llm,
        pytest.raises(ConnectionError, match="dropped"),
    ):
        llm.generate([{"input": "stuck"}, {"input": "fail"}])


def test_texts_and_statistics_that_are_not_what_they_should_be() -> None:
    class Sloppy(EchoAsyncLLM):
        async def agenerate(self, input: Any, num_generations: int = 1, **settings: Any) -> Any:
            return {
                "generations": [7, "kept", "also kept"],
                "statistics": {"input_tokens": [3, 4], "output_tokens": [1, 2.5, "9"]},
            }

    with Sloppy() as llm:
        (row,) = llm.generate(ROWS[:1], num_generations=3)
    assert [output["raw_output"] for output in row] == [None, "kept", "also kept"]
    assert "agenerate returned int 7 for this generation, not a str" in row[0]["error"]
    # A count list shorter than the texts, or a count that is no integer, is left out.
    assert [output.get("statistics") for output in row] == [
        {"input_tokens": 3, "output_tokens": 1},
        {"input_tokens": 4},
        None,
    ]
    assert all("error" not in output for output in row[1:])


class HeldAsyncLLM(EchoAsyncLLM):
    """Holds its first `parties` requests until they are all in flight together; one still
    alone after 5 s fails its row (a timeout)."""

    def __init__(self, parties: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.parties = parties
        self._arrived = 0
        self._met: Any = None  # made on the LLM's loop

    async def agenerate(self, input: Any, num_generations: int = 1, **settings: Any) -> Any:
        if self._met is None:
            self._met = asyncio.Event()
        self._arrived += 1
        if self._arrived == self.parties:
            self._met.set()
        if self._arrived <= self.parties:
            await asyncio.wait_for(self._met.wait(), 5)
        return await super().agenerate(input, num_generations, **settings)


@pytest.mark.timeout(20)
def test_with_max_concurrency_calls_are_submitted_at_once_and_run_together() -> None:
    with HeldAsyncLLM(parties=6, max_concurrency=6) as llm:
        assert llm.rows_ahead == 6
        advanced: list = []
        # Each call holds 3 rows: they finish only if both calls' requests are in flight.
        first = llm.submit(ROWS[:3], progress_callback_func=lambda **k: advanced.append(k))
        assert not first.done()  # held until the second call's requests are in flight too
        second = llm.submit(ROWS[3:6], num_generations=2)
        assert _texts(first.result(timeout=10)) == [[f"echo 0: row {i}"] for i in range(3)]
        assert _texts(second.result(timeout=10)) == [
            [f"echo 0: row {i}", f"echo 1: row {i}"] for i in range(3, 6)
        ]
        assert advanced == [{"advance": 3}] and llm.most_in_flight == 6
        # A row without the task's input is skipped, as in a call in this thread.
        (skipped, row) = llm.submit([{"other": 1}, ROWS[0]]).result(timeout=10)
        assert skipped[0]["raw_output"] is None and _texts([row]) == [["echo 0: row 0"]]
    with HeldAsyncLLM(parties=100, max_concurrency=2) as llm:  # held for good
        stuck = llm.submit(ROWS[:2])
        assert stuck.cancel()  # cancels its requests on the loop
    with EchoAsyncLLM() as llm:  # no max_concurrency: the call runs in the caller's thread
        assert llm.rows_ahead == 0 and llm.submit(ROWS[:2]).done()


@pytest.mark.timeout(20)
def test_teardown_waits_for_the_calls_submitted_or_cancels_them() -> None:
    class Slow(EchoAsyncLLM):
        async def agenerate(self, input: Any, num_generations: int = 1, **settings: Any) -> Any:
            await asyncio.sleep(0.3)
            return await super().agenerate(input, num_generations, **settings)

    with Slow(max_concurrency=2) as llm:
        call = llm.submit(ROWS[:2])
        assert llm.in_flight == 1
    assert _texts(call.result(timeout=0)) == [["echo 0: row 0"], ["echo 0: row 1"]]
    assert llm.in_flight == 0
    llm = HeldAsyncLLM(parties=100, max_concurrency=2)  # held for 5 s
    stuck = llm.submit(ROWS[:2])
    llm.teardown(wait=False)  # as leaving a `with` block by an exception does
    assert stuck.cancelled()


@pytest.mark.timeout(30)
def test_a_pipeline_keeps_max_concurrency_requests_in_flight_with_smaller_batches() -> None:
    from distilabel_llm.pipeline import Pipeline

    with HeldAsyncLLM(parties=8, max_concurrency=8) as llm:
        rows = Pipeline(generator=llm).generate(ROWS, batch_size=2, display_progress_bar=False)
        assert llm.most_in_flight == 8
    assert [row["error"] for row in rows] == [None] * len(ROWS)
    assert [row["generations"] for row in rows] == [[f"echo 0: row {i}"] for i in range(10)]


def test_generate_works_from_inside_a_running_event_loop() -> None:
    async def notebook_cell() -> Any:  # a Jupyter cell runs inside the kernel's loop
        with EchoAsyncLLM(max_concurrency=2) as llm:
            return llm.generate(ROWS[:2])

    assert _texts(asyncio.run(notebook_cell())) == [["echo 0: row 0"], ["echo 0: row 1"]]


def test_generate_outputs_and_threads() -> None:
    with EchoAsyncLLM(num_threads=2, max_concurrency=4) as llm:
        future = llm.generate(ROWS[:2])
        assert _texts(future.result(timeout=10)) == [["echo 0: row 0"], ["echo 0: row 1"]]
        results = llm.generate_outputs([[{"role": "user", "content": "hi"}]], num_generations=2)
    assert results[0]["generations"] == ["echo 0: hi", "echo 1: hi"]


@pytest.mark.timeout(60)
def test_in_a_child_process() -> None:
    load = functools.partial(EchoAsyncLLM, max_concurrency=4)
    with ProcessLLM(TextGenerationTask(), load) as llm:
        rows = llm.generate(ROWS[:3], num_generations=2).result(timeout=30)
    assert _texts(rows)[2] == ["echo 0: row 2", "echo 1: row 2"]


def test_it_is_abstract() -> None:
    with pytest.raises(TypeError, match="agenerate"):
        AsyncLLM()  # type: ignore[abstract]
