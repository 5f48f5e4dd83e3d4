"""The actor side of `RayLLM`: load the model once, then serve calls, merging those that queue.

The actor is asynchronous so that calls arriving while the model works wait in its queue
rather than in Ray's: the next model call then takes all of them at once, as `ProcessLLM`'s
child does (`_worker.coalesce`), which lets a backend batch them. The model itself always runs
on one thread of the actor's, never on the event loop.
"""

from __future__ import annotations

import asyncio
import os
import sys
import traceback
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Dict, List, Optional, Set, Tuple

import cloudpickle

from distilabel_llm.llm._worker import Request, coalesce, run_group

# What `ready` returns: the model's name, or the load's traceback, and where the actor runs.
Readiness = Tuple[Optional[str], Optional[str], str]


class ModelNotLoaded(Exception):
    """Raised by `generate` when the model failed to load; holds the load's traceback."""


class LLMActor:
    """Loads the model when the actor starts (and again when Ray restarts it)."""

    def __init__(self, sys_path: List[str], payload: bytes) -> None:
        # Where the driver's modules live on this node too (a local cluster, a shared disk),
        # objects pickled by reference to them load here.
        sys.path.extend(p for p in sys_path if p not in sys.path and os.path.isdir(p))
        self._llm: Any = None
        self._model_name: Optional[str] = None
        self._load_error: Optional[str] = None
        try:
            from distilabel_llm.llm.base import LLM

            load_llm_fn, task = cloudpickle.loads(payload)
            llm = load_llm_fn(task)
            if not isinstance(llm, LLM):
                raise TypeError(
                    f"`load_llm_fn` must return a distilabel_llm `LLM`, but it returned "
                    f"{type(llm).__qualname__}."
                )
            self._model_name = llm.model_name
            self._llm = llm
        except BaseException:
            self._load_error = traceback.format_exc()
        self._model_thread = ThreadPoolExecutor(1, thread_name_prefix="model")
        self._inbox: Optional[asyncio.Queue[Request]] = None
        self._server: Optional[asyncio.Task[None]] = None
        self._answers: Dict[int, asyncio.Future[Tuple[Any, Optional[Exception]]]] = {}
        self._cancelled: Set[int] = set()

    async def ready(self) -> Readiness:
        import ray

        location = f"node {ray.util.get_node_ip_address()}"
        gpus = ray.get_gpu_ids()
        if gpus:
            location += f", GPU {','.join(str(gpu) for gpu in gpus)}"
        return self._model_name, self._load_error, location

    async def generate(
        self, request_id: int, inputs: List[Dict[str, Any]], num_generations: int
    ) -> Any:
        if self._llm is None:
            raise ModelNotLoaded(self._load_error)
        loop = asyncio.get_running_loop()
        if self._inbox is None:
            self._inbox = asyncio.Queue()
            self._server = loop.create_task(self._serve())
        answer = loop.create_future()
        self._answers[request_id] = answer
        self._inbox.put_nowait((request_id, inputs, num_generations))
        rows, error = await answer
        if error is not None:
            raise error
        return rows

    async def cancel(self, request_id: int) -> None:
        """Skips the call if it has not started; its caller has stopped waiting for it."""
        if request_id in self._answers:
            self._cancelled.add(request_id)

    async def _serve(self) -> None:
        assert self._inbox is not None
        loop = asyncio.get_running_loop()
        while True:
            requests = [await self._inbox.get()]
            while not self._inbox.empty():
                requests.append(self._inbox.get_nowait())
            wanted = []
            for request in requests:
                if request[0] in self._cancelled:
                    self._cancelled.discard(request[0])
                    self._answers.pop(request[0]).set_result((None, None))
                else:
                    wanted.append(request)
            for group in coalesce(wanted):
                try:
                    results = await loop.run_in_executor(
                        self._model_thread, run_group, self._llm, group
                    )
                except BaseException as error:  # beyond what `run_group` isolates: SystemExit
                    failure = RuntimeError(f"The model's call ended with {error!r}.")
                    results = [(request_id, None, failure) for request_id, _, _ in group]
                for request_id, rows, error in results:
                    self._cancelled.discard(request_id)
                    self._answers.pop(request_id).set_result((rows, error))
