"""The actor side of `RayLLM`: load the model once, then serve calls, merging those that queue.

The actor is asynchronous so that calls arriving while the model works wait in its own queue
rather than in Ray's: the model thread then takes all of them at once, as `ProcessLLM`'s child
does (`_worker.coalesce`), which lets a backend batch them, and starts on them while the event
loop sends the last answers back. The model always runs on that one thread.
"""

from __future__ import annotations

import asyncio
import os
import queue
import sys
import threading
import traceback
from typing import Any, Dict, List, Optional, Set, Tuple

from distilabel_llm.errors import ModelNotLoadedError
from distilabel_llm.llm.members._worker import Request, coalesce, load_llm, run_group

# What `ready` returns: the model's name and the settings it takes, or the load's traceback,
# and where the actor runs.
Readiness = Tuple[Optional[str], Optional[Tuple[str, ...]], Optional[str], str]
# A call's rows, or the exception it raised.
Answer = Tuple[Any, Optional[BaseException]]


class LLMActor:
    """Loads the model when the actor starts (and again when Ray restarts it)."""

    def __init__(self, sys_path: List[str], payload: bytes) -> None:
        # Where the driver's modules live on this node too (a local cluster, a shared disk),
        # objects pickled by reference to them load here.
        sys.path.extend(p for p in sys_path if p not in sys.path and os.path.isdir(p))
        self._llm: Any = None
        self._model_name: Optional[str] = None
        self._supported: Optional[Tuple[str, ...]] = None
        self._uses_gpu = False
        self._load_error: Optional[str] = None
        try:
            llm = load_llm(payload)
            self._model_name = llm.model_name
            self._supported = tuple(llm.supported_generation_kwargs)
            self._uses_gpu = bool(llm.uses_gpu)
            self._llm = llm
        except BaseException:
            self._load_error = traceback.format_exc()
        self._inbox: queue.SimpleQueue[Tuple[Request, asyncio.Future[Answer]]] = queue.SimpleQueue()
        self._cancelled: Set[int] = set()
        if self._llm is not None:
            threading.Thread(target=self._serve, name="model", daemon=True).start()

    async def ready(self) -> Readiness:
        import ray

        location = f"node {ray.util.get_node_ip_address()}"
        gpus = ray.get_gpu_ids()
        if gpus and self._uses_gpu:
            location += f", GPU {','.join(str(gpu) for gpu in gpus)}"
        else:
            location += ", CPU"
        return self._model_name, self._supported, self._load_error, location

    async def generate(
        self,
        request_id: int,
        inputs: List[Dict[str, Any]],
        num_generations: int,
        generation_kwargs: Dict[str, Any],
    ) -> Any:
        if self._llm is None:
            raise ModelNotLoadedError(self._load_error)
        answer: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._inbox.put(((request_id, inputs, num_generations, generation_kwargs), answer))
        rows, error = await answer
        if error is not None:
            raise error
        return rows

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
            for request, answer in calls:
                if request[0] in self._cancelled:
                    self._cancelled.discard(request[0])
                    _answer(answer, (None, None))
                else:
                    answers[request[0]] = answer
            for group in coalesce([request for request, _ in calls if request[0] in answers]):
                try:
                    results = run_group(self._llm, group)
                except BaseException as escaped:  # beyond what `run_group` isolates: SystemExit
                    failure = RuntimeError(f"The model's call ended with {escaped!r}.")
                    results = [(request_id, None, failure) for request_id, *_ in group]
                for request_id, rows, error in results:
                    self._cancelled.discard(request_id)
                    _answer(answers[request_id], (rows, error))


def _answer(answer: asyncio.Future[Answer], value: Answer) -> None:
    answer.get_loop().call_soon_threadsafe(_settle, answer, value)


def _settle(answer: asyncio.Future[Answer], value: Answer) -> None:
    if not answer.done():
        answer.set_result(value)
