"""The actor side of `RayLLM`: load the model once, then serve calls, merging those that queue.

The actor is asynchronous so that calls arriving while the model works wait in its own queue
rather than in Ray's: the model thread then takes all of them at once, as `ProcessLLM`'s child
does (`serve_calls`), which lets a backend batch them, and starts on them while the event
loop sends the last answers back. The model always runs on that one thread.
"""

from __future__ import annotations

import asyncio
import os
import queue
import sys
import threading
import traceback
from typing import Any, List, Set, Tuple

from distilabel_llm.errors import ModelNotLoadedError
from distilabel_llm.llm.members._protocol import Call, Readiness, Reply, load_llm, serve_calls


class LLMActor:
    """Loads the model when the actor starts (and again when Ray restarts it)."""

    def __init__(self, sys_path: List[str], payload: bytes) -> None:
        # Where the driver's modules live on this node too (a local cluster, a shared disk),
        # objects pickled by reference to them load here.
        sys.path.extend(p for p in sys_path if p not in sys.path and os.path.isdir(p))
        self._llm: Any = None
        try:
            llm = load_llm(payload)
            self._readiness = Readiness(
                llm.model_name, tuple(llm.supported_generation_kwargs), llm.uses_gpu
            )
            self._llm = llm
        except BaseException:
            self._readiness = Readiness(None, None, False, traceback.format_exc())
        self._inbox: queue.SimpleQueue[Tuple[Call, asyncio.Future[Reply]]] = queue.SimpleQueue()
        self._cancelled: Set[int] = set()
        if self._llm is not None:
            threading.Thread(target=self._serve, name="model", daemon=True).start()

    async def ready(self) -> Tuple[Readiness, str]:
        """The model's readiness, and where the actor runs (its node, and its GPUs)."""
        import ray

        location = f"node {ray.util.get_node_ip_address()}"
        gpus = ray.get_gpu_ids()
        if gpus and self._readiness.uses_gpu:
            location += f", GPU {','.join(str(gpu) for gpu in gpus)}"
        else:
            location += ", CPU"
        return self._readiness, location

    async def generate(self, call: Call) -> Any:
        if self._llm is None:
            raise ModelNotLoadedError(self._readiness.load_error)
        answer: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self._inbox.put((call, answer))
        reply = await answer
        if reply.error is not None:
            raise reply.error
        return reply.rows

    async def stop(self) -> None:
        """Unloads the model (frees GPU memory) before the actor is killed."""
        if self._llm is not None:
            self._llm.close()

    async def cancel(self, request_id: int) -> None:
        """Skips the call if it has not started; its caller has stopped waiting for it."""
        self._cancelled.add(request_id)

    def _serve(self) -> None:
        """The model thread: takes every call queued meanwhile, merges what it can, and runs
        it; the event loop hands the answers back while the model goes on with the next."""
        while True:
            calls = [self._inbox.get()]
            while True:
                try:
                    calls.append(self._inbox.get_nowait())
                except queue.Empty:
                    break
            answers = {}
            for call, answer in calls:
                if call.request_id in self._cancelled:
                    self._cancelled.discard(call.request_id)
                    _answer(answer, Reply(call.request_id, None))
                else:
                    answers[call.request_id] = answer
            serving = [call for call, _ in calls if call.request_id in answers]
            try:
                replies = serve_calls(self._llm, serving)
            except BaseException as escaped:  # beyond what `serve_calls` isolates: SystemExit
                failure = RuntimeError(f"The model's call ended with {escaped!r}.")
                replies = [Reply(call.request_id, None, failure) for call in serving]
            for reply in replies:
                self._cancelled.discard(reply.request_id)
                _answer(answers[reply.request_id], reply)


def _answer(answer: asyncio.Future[Reply], value: Reply) -> None:
    answer.get_loop().call_soon_threadsafe(_settle, answer, value)


def _settle(answer: asyncio.Future[Reply], value: Reply) -> None:
    if not answer.done():
        answer.set_result(value)
