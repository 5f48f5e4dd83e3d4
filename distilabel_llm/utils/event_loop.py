"""An asyncio event loop in a private thread, so synchronous code can await coroutines."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import threading
from typing import Any, Coroutine, Optional, TypeVar

T = TypeVar("T")

__all__ = ["EventLoopThread"]


class EventLoopThread:
    """Runs coroutines on one long-lived event loop in a daemon thread.

    Callers in any thread, including threads whose own event loop is running (a notebook, an
    async web handler), block on `run` while the coroutine runs on the private loop. Keeping
    one loop for the object's lifetime lets loop-bound resources (an async HTTP client's
    connection pool, semaphores) be shared by every call.

    Args:
        name: the thread's name, shown in debuggers and thread dumps.
    """

    def __init__(self, name: str) -> None:
        self._name = name
        self._lock = threading.Lock()
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._thread: Optional[threading.Thread] = None
        self._pid = os.getpid()
        self._closed = False

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Runs `coro` on the private loop and returns its result (or raises its exception).

        Raises:
            RuntimeError: if this is closed, was made in another process, or `run` is called
                from the private loop itself (which would deadlock).
        """
        future = self._schedule(coro, waits=True)
        try:
            return future.result()
        except BaseException:
            # Interrupted (e.g. Ctrl-C): stop the coroutine rather than leave it running.
            future.cancel()
            raise

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Starts `coro` on the private loop and returns at once; its result comes in the
        future, and cancelling the future cancels the coroutine.

        Raises:
            RuntimeError: if this is closed, or was made in another process.
        """
        return self._schedule(coro, waits=False)

    def _schedule(self, coro: Coroutine[Any, Any, T], waits: bool) -> concurrent.futures.Future[T]:
        """Schedules `coro` on the loop; `waits`: the caller will block on it."""
        try:
            loop = self._started_loop()
            if waits and threading.current_thread() is self._thread:
                raise RuntimeError(
                    f"{self._name}: `run` was called from its own event loop and would wait "
                    "for itself forever; await the coroutine instead."
                )
            return asyncio.run_coroutine_threadsafe(coro, loop)
        except BaseException:
            coro.close()  # never scheduled: close it so Python does not warn it was not awaited
            raise

    def close(
        self, final: Optional[Coroutine[Any, Any, Any]] = None, timeout: float = 30.0
    ) -> None:
        """Runs `final` (e.g. closing a client), cancels what is left, stops the loop. Idempotent.

        Args:
            final: a coroutine to run on the loop before it stops.
            timeout: seconds to wait for `final`, and then for the thread to end.
        """
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop, self._thread, self._closed = None, None, True
        if loop is None or thread is None or os.getpid() != self._pid:
            if final is not None:
                final.close()
            return
        if threading.current_thread() is thread:
            raise RuntimeError(f"{self._name}: `close` cannot be called from its own event loop.")
        try:
            if final is not None:
                asyncio.run_coroutine_threadsafe(final, loop).result(timeout)
        finally:
            asyncio.run_coroutine_threadsafe(_cancel_other_tasks(), loop).result(timeout)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout)
            if not thread.is_alive():
                loop.close()

    def _started_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._closed:
                raise RuntimeError(f"{self._name} is closed.")
            if os.getpid() != self._pid:
                # After a fork the loop's thread does not exist in this process: waiting on it
                # would hang forever.
                raise RuntimeError(
                    f"{self._name} was created in process {self._pid} and cannot run in process "
                    f"{os.getpid()}; create the object in the process that uses it (for "
                    "example inside a ProcessLLM's `load_llm_fn`)."
                )
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=_serve_forever, args=(loop,), name=self._name, daemon=True
                )
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop


def _serve_forever(loop: asyncio.AbstractEventLoop) -> None:
    asyncio.set_event_loop(loop)
    loop.run_forever()


async def _cancel_other_tasks() -> None:
    current = asyncio.current_task()
    tasks = [task for task in asyncio.all_tasks() if task is not current]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
