"""Uniform submission to any generator: every `generate` call gives back a `Future`.

A threaded `LLM`, a `ProcessLLM` or a `RayLLM` already returns futures. A plain `LLM` runs in
the calling thread and returns a resolved future: its model computes in this process, so
another thread would not make it overlap with anything, and a model driven from two threads is
slower (two torch OpenMP teams oversubscribe the cores; measured 2-3x slower here). An
`LLMPool` blocks while its members compute in their own processes, so its calls run on a few
daemon threads: the job keeps that many batches in the pool, so that its members start on the
next ones while the last units of the oldest finish and the job writes it, the pipeline
overlaps them with the other model's work, and a Ctrl-C never waits for a pool call to end.
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future
from typing import Any, Callable, Dict, List, Optional, Tuple

from distilabel_llm.llm.core.outputs import LLMOutput

__all__ = ["LLMRunner", "MemberProgress", "Progress"]

Progress = Callable[..., None]
MemberProgress = Callable[[int, int], None]
Outputs = List[List[LLMOutput]]
_Call = Tuple["Future[Outputs]", List[Dict[str, Any]], int, Dict[str, Any]]

# Concurrent `generate` calls on a pool, per member: enough that every member always holds
# queued units while the job collects and writes the oldest batch. Measured on 4 replicas with
# batches of 8 rows: 2 calls in all left members idle (1.20x the pool's own time on the same
# rows), 4 gave 1.05x, 8 gave 1.00x.
_POOL_CALLS_PER_MEMBER = 2
_MIN_POOL_CALLS = 4
# Batches submitted ahead of the one being collected by anything else: one running, one queued.
_CALLS_AHEAD = 2


class LLMRunner:
    """Calls `llm.generate` and returns a `Future`, whatever kind of LLM `llm` is.

    Args:
        llm: an `LLM`, a `ProcessLLM`, a `RayLLM` or an `LLMPool`.
    """

    def __init__(self, llm: Any) -> None:
        self.llm = llm
        self._queue: queue.SimpleQueue[Optional[_Call]] = queue.SimpleQueue()
        self._threads: List[threading.Thread] = []
        self._lock = threading.Lock()

    @property
    def calls_ahead(self) -> int:
        """How many batches to keep submitted: every pool call busy, else one queued."""
        members = len(self.member_names)
        return max(_MIN_POOL_CALLS, _POOL_CALLS_PER_MEMBER * members) if members else _CALLS_AHEAD

    @property
    def member_names(self) -> List[str]:
        """The pool members' names, or `[]` when `llm` is not a pool."""
        return list(getattr(self.llm, "member_names", None) or [])

    def submit(
        self,
        inputs: List[Dict[str, Any]],
        num_generations: int,
        progress: Optional[Progress] = None,
        member_progress: Optional[MemberProgress] = None,
        generation_kwargs: Optional[Dict[str, Any]] = None,
    ) -> Future[Outputs]:
        """Starts generating for `inputs`; the future resolves to one output list per row."""
        kwargs: Dict[str, Any] = {}
        if generation_kwargs:
            kwargs["generation_kwargs"] = generation_kwargs
        if progress is not None:
            kwargs["progress_callback_func"] = progress
        if member_progress is not None and self.member_names:
            kwargs["member_progress_callback_func"] = member_progress
        if getattr(self.llm, "return_futures", False) or not self.member_names:
            return self._call_now(inputs, num_generations, kwargs)
        future: Future[Outputs] = Future()
        self._ensure_thread()
        self._queue.put((future, inputs, num_generations, kwargs))
        return future

    def close(self) -> None:
        """Cancels the calls not yet started and lets the threads end after the current ones."""
        while True:
            try:
                call = self._queue.get_nowait()
            except queue.Empty:
                break
            if call is not None:
                call[0].cancel()
        with self._lock:
            for _ in self._threads:
                self._queue.put(None)

    def _call_now(
        self, inputs: List[Dict[str, Any]], num_generations: int, kwargs: Dict[str, Any]
    ) -> Future[Outputs]:
        try:
            result = self.llm.generate(inputs, num_generations=num_generations, **kwargs)
        except Exception as error:
            failed: Future[Outputs] = Future()
            failed.set_exception(error)
            return failed
        if isinstance(result, Future):
            return result
        done: Future[Outputs] = Future()
        done.set_result(result)
        return done

    def _ensure_thread(self) -> None:
        with self._lock:
            if self._threads:
                return
            for index in range(self.calls_ahead):
                name = f"distilabel-llm-{type(self.llm).__name__}-{index}"
                thread = threading.Thread(target=self._serve, name=name, daemon=True)
                thread.start()
                self._threads.append(thread)

    def _serve(self) -> None:
        while True:
            call = self._queue.get()
            if call is None:
                return
            future, inputs, num_generations, kwargs = call
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = self.llm.generate(inputs, num_generations=num_generations, **kwargs)
            except BaseException as error:
                future.set_exception(error)
            else:
                future.set_result(result)
