"""`EventLoopThread`: coroutines run from synchronous code, in any thread, without deadlocks."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import CancelledError, ThreadPoolExecutor
from typing import Iterator

import pytest

from distilabel_llm.utils.event_loop import EventLoopThread


@pytest.fixture
def loop_thread() -> Iterator[EventLoopThread]:
    runner = EventLoopThread("test-loop")
    yield runner
    runner.close()


async def _which_thread() -> str:
    await asyncio.sleep(0)
    return threading.current_thread().name


@pytest.mark.timeout(30)
def test_runs_coroutines_on_one_private_thread_from_any_caller(
    loop_thread: EventLoopThread,
) -> None:
    assert loop_thread.run(_which_thread()) == "test-loop"

    async def from_running_loop() -> str:
        return loop_thread.run(_which_thread())  # blocks this loop, runs on the private one

    assert asyncio.run(from_running_loop()) == "test-loop"
    with ThreadPoolExecutor(max_workers=4) as pool:
        names = list(pool.map(lambda _: loop_thread.run(_which_thread()), range(8)))
    assert names == ["test-loop"] * 8


@pytest.mark.timeout(30)
def test_submit_returns_at_once_and_cancelling_its_future_cancels_the_coroutine(
    loop_thread: EventLoopThread,
) -> None:
    started, release = threading.Event(), threading.Event()
    cancelled = threading.Event()

    async def wait_for_release() -> str:
        started.set()
        try:
            while not release.is_set():
                await asyncio.sleep(0.01)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return threading.current_thread().name

    future = loop_thread.submit(wait_for_release())
    assert started.wait(10) and not future.done()
    release.set()
    assert future.result(timeout=10) == "test-loop"
    release.clear()
    started.clear()
    future = loop_thread.submit(wait_for_release())
    assert started.wait(10)
    assert future.cancel()
    assert cancelled.wait(10)


@pytest.mark.timeout(30)
def test_exceptions_propagate_to_the_caller(loop_thread: EventLoopThread) -> None:
    async def fail() -> None:
        raise KeyError("boom")

    with pytest.raises(KeyError, match="boom"):
        loop_thread.run(fail())


@pytest.mark.timeout(30)
def test_run_from_the_loop_itself_raises_instead_of_deadlocking(
    loop_thread: EventLoopThread,
) -> None:
    async def reenter() -> None:
        loop_thread.run(_which_thread())

    with pytest.raises(RuntimeError, match="would wait for itself"):
        loop_thread.run(reenter())


@pytest.mark.timeout(30)
def test_close_runs_the_final_coroutine_cancels_pending_work_and_ends_the_thread() -> None:
    runner = EventLoopThread("closing-loop")
    started = threading.Event()
    finished = []

    async def forever() -> None:
        started.set()
        await asyncio.Event().wait()

    async def final() -> None:
        finished.append(True)

    with ThreadPoolExecutor(max_workers=1) as pool:
        waiting = pool.submit(runner.run, forever())
        assert started.wait(10)
        runner.close(final())
        with pytest.raises(CancelledError):
            waiting.result(timeout=10)
    assert finished == [True]
    assert not [t for t in threading.enumerate() if t.name == "closing-loop"]
    runner.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        runner.run(_which_thread())
