"""Combine many futures into one, in O(n)."""

from __future__ import annotations

import threading
from concurrent.futures import CancelledError, Future, InvalidStateError
from typing import Any, Callable, Dict, List, Optional, Sequence, TypeVar

T = TypeVar("T")
R = TypeVar("R")

__all__ = ["when_all_complete"]


def when_all_complete(
    futures: Sequence[Future[T]],
    callback: Optional[Callable[[List[T]], R]] = None,
) -> Future[Any]:
    """Returns a future that resolves once every future in `futures` has resolved.

    Its result is the list of the futures' results, in the order of `futures`, passed through
    `callback` when one is given. It fails with the first exception raised by an input future
    (or by `callback`), and cancelling it cancels the inputs still pending.

    Each completion costs O(1): a counter, not a scan, so combining n futures costs O(n).

    Args:
        futures: the futures to wait for.
        callback: applied to the list of results before it is set on the returned future.

    Returns:
        A `concurrent.futures.Future` of the (optionally transformed) list of results.
    """
    futures = list(futures)
    combined: Future[Any] = Future()
    # Each distinct future's first position: one dict instead of a closure per future keeps
    # the combine step free of allocations that would wake the garbage collector.
    positions: Dict[Future[T], int] = {}
    for index, future in enumerate(futures):
        positions.setdefault(future, index)
    results: List[Any] = [None] * len(futures)
    remaining = len(positions)
    lock = threading.Lock()

    def _finish() -> None:
        if len(positions) < len(futures):  # a future given more than once
            for index, future in enumerate(futures):
                results[index] = results[positions[future]]
        try:
            value = callback(results) if callback is not None else results
        except BaseException as error:
            settle(combined, exception=error)
        else:
            settle(combined, result=value)

    if remaining == 0:
        _finish()
        return combined

    def _on_input_done(future: Future[T]) -> None:
        nonlocal remaining
        # One `result()` per completion stores the value in its place, so finishing needs no
        # second pass over the futures.
        try:
            results[positions[future]] = future.result()
        except CancelledError:
            settle(combined, exception=CancelledError("an input future was cancelled"))
            return
        except BaseException as error:
            settle(combined, exception=error)
            return
        with lock:
            remaining -= 1
            last = remaining == 0
        if last:
            _finish()

    def _on_combined_done(done: Future[Any]) -> None:
        if done.cancelled():
            for future in positions:
                future.cancel()

    combined.add_done_callback(_on_combined_done)
    for future in positions:
        future.add_done_callback(_on_input_done)
    return combined


def settle(
    future: Future[Any], result: Any = None, exception: Optional[BaseException] = None
) -> None:
    """Resolves `future` unless it is already resolved or cancelled (first outcome wins)."""
    try:
        if exception is not None:
            future.set_exception(exception)
        else:
            future.set_result(result)
    except InvalidStateError:
        pass
