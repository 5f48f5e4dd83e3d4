"""The threads an `LLMPool` runs its calls on, so that `submit` returns a future at once.

A pool call spends its life waiting on its members, which compute in their own processes, so
a thread per call in flight costs nothing. They are daemon threads: a Ctrl-C, or the
interpreter's exit, never waits for a pool call to end (the pool's teardown fails its work).
A call's future is left pending while it runs, so that its caller can still cancel it.
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future
from typing import Any, Callable, List, Optional, Tuple

from distilabel_llm.utils.future_tools import settle

__all__ = ["CallThreads"]

_Work = Tuple["Future[Any]", Callable[[], Any]]


class CallThreads:
    """Runs callables on up to `count` daemon threads, started on first use.

    Args:
        name: the threads' name prefix.
        count: how many calls may run at once; more wait their turn.
    """

    def __init__(self, name: str, count: int) -> None:
        self._name = name
        self._count = count
        self._queue: queue.SimpleQueue[Optional[_Work]] = queue.SimpleQueue()
        self._threads: List[threading.Thread] = []
        self._lock = threading.Lock()

    def submit(self, work: Callable[[], Any]) -> Future[Any]:
        """Runs `work()` on a thread; its result or exception comes in the future."""
        future: Future[Any] = Future()
        with self._lock:
            if len(self._threads) < self._count:
                thread = threading.Thread(
                    target=self._serve, name=f"{self._name}-{len(self._threads)}", daemon=True
                )
                thread.start()
                self._threads.append(thread)
        self._queue.put((future, work))
        return future

    def shutdown(self, reason: BaseException) -> None:
        """Fails the calls not started yet with `reason`; the threads end after their
        current ones."""
        while True:
            try:
                work = self._queue.get_nowait()
            except queue.Empty:
                break
            if work is not None:
                settle(work[0], exception=reason)
        with self._lock:
            for _ in self._threads:
                self._queue.put(None)
            self._threads.clear()

    def _serve(self) -> None:
        while True:
            work = self._queue.get()
            if work is None:
                return
            future, call = work
            if future.cancelled():
                continue
            try:
                result = call()
            except BaseException as error:
                settle(future, exception=error)
            else:
                settle(future, result=result)
