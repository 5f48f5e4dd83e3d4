"""`when_all_complete`: order, empty and huge inputs, failures, cancellation, O(n) cost."""

from __future__ import annotations

import random
import threading
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from typing import Any, List

import pytest

from distilabel_llm.utils.future_tools import when_all_complete


def _pending(n: int) -> List[Future[Any]]:
    return [Future() for _ in range(n)]


def _resolve_from_threads(futures: List[Future[Any]], order: List[int], threads: int) -> None:
    """Sets `futures[i]` to `i` for each `i` of `order`, split over `threads` threads."""
    start = threading.Barrier(threads)

    def work(positions: List[int]) -> None:
        start.wait(timeout=10)
        for i in positions:
            futures[i].set_result(i)

    workers = [
        threading.Thread(target=work, args=(order[k::threads],), name=f"resolver-{k}")
        for k in range(threads)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=10)
        assert not worker.is_alive()


def test_empty_resolves_at_once() -> None:
    combined = when_all_complete([])
    assert isinstance(combined, Future)
    assert combined.done() and combined.result() == []


def test_empty_goes_through_the_callback() -> None:
    assert when_all_complete([], callback=lambda results: ("seen", results)).result() == (
        "seen",
        [],
    )


def test_single_future() -> None:
    future: Future[str] = Future()
    combined = when_all_complete([future])
    assert not combined.done()
    future.set_result("x")
    assert combined.done() and combined.result() == ["x"]


def test_already_resolved_inputs() -> None:
    futures = _pending(3)
    for i, future in enumerate(futures):
        future.set_result(i)
    combined = when_all_complete(tuple(futures))
    assert combined.done() and combined.result() == [0, 1, 2]


def test_reverse_completion_keeps_input_order() -> None:
    futures = _pending(100)
    combined = when_all_complete(futures)
    for i in reversed(range(100)):
        assert not combined.done()
        futures[i].set_result(f"r{i}")
    assert combined.result(timeout=0) == [f"r{i}" for i in range(100)]


@pytest.mark.parametrize("threads", [1, 4])
def test_ten_thousand_futures_resolved_in_random_order_from_threads(threads: int) -> None:
    futures = _pending(10_000)
    combined = when_all_complete(futures)
    order = list(range(10_000))
    random.Random(1234).shuffle(order)
    _resolve_from_threads(futures, order, threads)
    assert combined.result(timeout=10) == list(range(10_000))


def test_futures_from_a_thread_pool() -> None:
    with ThreadPoolExecutor(max_workers=4) as pool:
        combined = when_all_complete([pool.submit(pow, i, 2) for i in range(200)])
        assert combined.result(timeout=10) == [i * i for i in range(200)]


def test_callback_is_applied_once_to_the_ordered_results() -> None:
    seen: List[List[int]] = []

    def total(results: List[int]) -> int:
        seen.append(list(results))
        return sum(results)

    futures = _pending(4)
    combined = when_all_complete(futures, callback=total)
    for i in (2, 0, 3, 1):
        futures[i].set_result(i + 1)
    assert combined.result(timeout=0) == 10
    assert seen == [[1, 2, 3, 4]]


def test_callback_raising_fails_the_combined_future() -> None:
    def broken(results: List[int]) -> int:
        raise KeyError("bad callback")

    futures = _pending(2)
    combined = when_all_complete(futures, callback=broken)
    futures[0].set_result(1)
    futures[1].set_result(2)
    with pytest.raises(KeyError, match="bad callback"):
        combined.result(timeout=0)


def test_fails_with_the_first_exception_without_waiting_for_the_rest() -> None:
    futures = _pending(5)
    combined = when_all_complete(futures, callback=lambda results: pytest.fail("not called"))
    futures[0].set_result(0)
    first, second = ValueError("first"), RuntimeError("second")
    futures[3].set_exception(first)
    assert combined.done()
    futures[1].set_exception(second)
    futures[2].set_result(2)
    assert combined.exception(timeout=0) is first
    # Inputs still pending are left alone: only cancelling the combined future cancels them.
    assert not futures[4].done()


def test_failure_from_another_thread() -> None:
    futures = _pending(50)
    combined = when_all_complete(futures)

    def fail_one() -> None:
        for i, future in enumerate(futures):
            if i == 17:
                future.set_exception(OSError("disk"))
            else:
                future.set_result(i)

    worker = threading.Thread(target=fail_one)
    worker.start()
    worker.join(timeout=10)
    with pytest.raises(OSError, match="disk"):
        combined.result(timeout=10)


def test_a_cancelled_input_fails_the_combined_future() -> None:
    futures = _pending(3)
    combined = when_all_complete(futures)
    futures[0].set_result(0)
    assert futures[1].cancel()
    with pytest.raises(CancelledError):
        combined.result(timeout=0)
    assert not combined.cancelled()


def test_cancelling_the_combined_future_cancels_pending_inputs() -> None:
    futures = _pending(4)
    combined = when_all_complete(futures)
    futures[0].set_result("done")
    assert futures[1].set_running_or_notify_cancel()  # running: cannot be cancelled
    assert combined.cancel()
    assert combined.cancelled()
    assert futures[0].result() == "done"
    assert futures[1].running() and not futures[1].cancelled()
    assert futures[2].cancelled() and futures[3].cancelled()
    futures[1].set_result("late")  # finishing afterwards is harmless
    assert combined.cancelled()


def test_cancelling_after_completion_is_refused() -> None:
    futures = _pending(2)
    combined = when_all_complete(futures)
    for future in futures:
        future.set_result(1)
    assert not combined.cancel()
    assert combined.result() == [1, 1]


class _CountingFuture(Future):  # type: ignore[type-arg]
    """A Future counting how often its state is inspected."""

    inspections = 0

    def _count(self) -> None:
        type(self).inspections += 1

    def done(self) -> bool:
        self._count()
        return super().done()

    def cancelled(self) -> bool:
        self._count()
        return super().cancelled()

    def running(self) -> bool:
        self._count()
        return super().running()

    def result(self, timeout: Any = None) -> Any:
        self._count()
        return super().result(timeout)

    def exception(self, timeout: Any = None) -> Any:
        self._count()
        return super().exception(timeout)


def test_each_completion_costs_constant_inspections() -> None:
    # A scan of all futures per completion would inspect n * n / 2 times; O(n) stays linear.
    n = 2_000
    _CountingFuture.inspections = 0
    futures = [_CountingFuture() for _ in range(n)]
    combined = when_all_complete(futures)
    for future in reversed(futures):
        future.set_result(None)
    assert combined.result(timeout=0) == [None] * n
    assert _CountingFuture.inspections <= 5 * n


def test_a_future_given_twice_fills_both_places() -> None:
    shared: Future[str] = Future()
    other: Future[str] = Future()
    combined = when_all_complete([shared, other, shared])
    shared.set_result("s")
    assert not combined.done()
    other.set_result("o")
    assert combined.result(timeout=0) == ["s", "o", "s"]
