"""`RayLLM`: an LLM loaded and served in a Ray actor, anywhere on a Ray cluster.

It is `ProcessLLM`'s counterpart beyond one machine: the same `load_llm_fn(task) -> LLM`
contract, `generate` returning a `Future`, and the same guarantees. Ray places the actor on a
node with the resources asked for, sets `CUDA_VISIBLE_DEVICES` for its GPUs, and restarts it and
re-runs its in-flight calls when `max_restarts` allows; past that, every call in flight fails
with a `RayLLMError` and `LLMPool` re-runs the work on its other members.

`ray` is imported only when a `RayLLM` is created: install it with
`pip install 'distilabel_llm[ray]'`.
"""

from __future__ import annotations

import contextlib
import functools
import queue
import sys
import threading
from concurrent.futures import Future
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Dict,
    Iterator,
    Mapping,
    Optional,
    Tuple,
)

from distilabel_llm.errors import ModelNotLoadedError, RayLLMError
from distilabel_llm.llm.core.contract import LoadLLMFn
from distilabel_llm.llm.members._child import error_summary
from distilabel_llm.llm.members._protocol import Call, Readiness, Reply
from distilabel_llm.llm.members._ray_actor import LLMActor
from distilabel_llm.llm.members._ray_cluster import (
    DEFAULT_NUM_CPUS,
    actor_demand,
    check_cluster_fits,
    import_ray,
)
from distilabel_llm.llm.members.remote import PendingCall, RemoteLLM
from distilabel_llm.utils.lifecycle import close_at_exit

if TYPE_CHECKING:
    from distilabel_llm.tasks.base import Task

__all__ = ["RayLLM"]

# Seconds a gentle stop may take to unload the model before the actor is killed anyway.
_STOP_TIMEOUT = 10.0


@functools.cache
def _actor_class(ray: Any) -> Any:
    """The actor class, made once: Ray exports a class's definition to the cluster each time
    `ray.remote` wraps it."""
    return ray.remote(LLMActor)


class RayLLM(RemoteLLM):
    """Runs the LLM that `load_llm_fn` builds in a Ray actor, and serves it to this process.

    Args:
        task: the task the actor's LLM uses; also available here as `task`.
        load_llm_fn: builds the LLM from the task, in the actor. Serialised with cloudpickle,
            so lambdas, closures and `__main__` functions work; what they import must be
            installed on the cluster's nodes (distilabel_llm and the backend's extra).
        num_cpus: CPUs the actor reserves; Ray also sets its `OMP_NUM_THREADS` to this.
        num_gpus: GPUs the actor reserves; its model sees them as devices 0, 1...
        resources: custom resources the actor reserves, e.g. `{"A100": 1}`.
        scheduling_strategy: where Ray places the actor: `"DEFAULT"`, `"SPREAD"` or one of
            Ray's strategy objects (a placement group bundle, a node affinity).
        max_restarts: times Ray restarts an actor that dies (reloading the model) and re-runs
            its in-flight calls, before those calls fail. Also available as `max_restarts`.
        address: the cluster to connect to, e.g. `"ray://head:10001"`; by default
            `RAY_ADDRESS`, else a new local cluster. Ignored once this program has connected.
        check_resources: fail at once when no node of the cluster has the resources asked
            for, rather than wait for one. Pass False on an autoscaling cluster.
        actor_options: any other option of Ray's `.options()` for the actor, e.g.
            `{"runtime_env": {"pip": ["transformers"]}}` or `{"memory": 8e9}`.
        load_timeout: seconds from construction until the model must have loaded (Ray
            placing the actor included); past that the actor is killed and the load fails
            like any other load failure.

    Raises:
        ClusterTooSmallError: (a `ValueError`) if no node of the cluster can hold the actor
            (see `check_resources`).
        MissingExtraError: if `ray` is not installed.
    """

    def __init__(
        self,
        task: Task,
        load_llm_fn: LoadLLMFn,
        *,
        num_cpus: float = DEFAULT_NUM_CPUS,
        num_gpus: float = 0,
        resources: Optional[Mapping[str, float]] = None,
        scheduling_strategy: Any = None,
        max_restarts: int = 0,
        address: Optional[str] = None,
        check_resources: bool = True,
        actor_options: Optional[Mapping[str, Any]] = None,
        load_timeout: Optional[float] = None,
    ) -> None:
        super().__init__(task, load_llm_fn, "the Ray actor", max_restarts, load_timeout)
        ray = import_ray(address)
        self._demand = actor_demand(num_cpus, num_gpus, resources)
        if check_resources and scheduling_strategy is None:
            check_cluster_fits(ray, self._demand, count=1)
        options: Dict[str, Any] = {
            "num_cpus": num_cpus,
            "num_gpus": num_gpus,
            "resources": dict(resources or {}),
            "max_restarts": max_restarts,
            "max_task_retries": max_restarts,
            **(actor_options or {}),
        }
        if scheduling_strategy is not None:
            options["scheduling_strategy"] = scheduling_strategy
        self._ray = ray
        self._location: Optional[str] = None
        self._load_timer: Optional[threading.Timer] = None
        # Ray calls back on its own threads, where calling Ray again can deadlock: the answers
        # are handled on a thread of ours instead, which also runs the futures' callbacks.
        self._answers: queue.SimpleQueue[Optional[Callable[[], None]]] = queue.SimpleQueue()
        self._receiver = threading.Thread(target=self._receive, name="RayLLM-receiver", daemon=True)
        self._receiver.start()
        self._actor = _actor_class(ray).options(**options).remote(list(sys.path), self._payload)
        self._when_answered(self._actor.ready.remote(), self._on_ready)
        if load_timeout is not None:
            self._load_timer = threading.Timer(
                load_timeout, self._answers.put, args=(self._check_loaded,)
            )
            self._load_timer.daemon = True
            self._load_timer.start()
        close_at_exit(self, "_stop_at_exit")

    @property
    def location(self) -> Optional[str]:
        """Where the actor runs (its node, and its GPUs if any), once it is ready."""
        return self._location

    @property
    def actor(self) -> Any:
        """The Ray actor handle."""
        return self._actor

    def _send(self, pending: PendingCall, message: Call) -> None:
        request_id = pending.call.request_id
        try:
            ref = self._actor.generate.remote(message)
        except Exception as error:
            raise TypeError(f"The inputs cannot reach the Ray actor: {error}") from error
        self._when_answered(ref, functools.partial(self._on_result, request_id))

    def _cancel(self, request_id: int) -> None:
        # The actor skips the call if it has not started. Not `ray.cancel`: on a queued actor
        # call it leaves a gap in the actor's call sequence that stalls the calls after it
        # (30 s with Ray 2.60, then fails them).
        with contextlib.suppress(Exception):
            self._actor.cancel.remote(request_id)

    def _stop_model(self, wait: bool) -> None:
        if self._load_timer is not None:
            self._load_timer.cancel()
        if wait and self._ready.is_set() and self._failure is None:
            # A gentle stop lets the model unload; a kill would free the memory too, later.
            with contextlib.suppress(Exception):
                self._ray.get(self._actor.stop.remote(), timeout=_STOP_TIMEOUT)
        self._release_actor()
        self._answers.put(None)
        if self._receiver is not threading.current_thread():
            self._receiver.join(5.0)

    def _error(self, message: str) -> RayLLMError:
        return RayLLMError(message)

    def _release_actor(self) -> None:
        if self._ray.is_initialized():  # at exit, Ray may have shut down, and killed it, first
            with contextlib.suppress(Exception):
                self._ray.kill(self._actor)

    def __rich_repr__(self) -> Iterator[Tuple[str, Any]]:
        yield from super().__rich_repr__()
        yield "resources", self._demand
        if self._location:
            yield "location", self._location

    # The actor's answers, handled on the receiver thread.

    def _when_answered(self, ref: Any, handle: Callable[[Future[Any]], None]) -> None:
        ref.future().add_done_callback(
            lambda ray_future: self._answers.put(functools.partial(handle, ray_future))
        )

    def _receive(self) -> None:
        while True:
            handle = self._answers.get()
            if handle is None:
                return
            handle()

    def _on_ready(self, ray_future: Future[Tuple[Readiness, str]]) -> None:
        try:
            readiness, self._location = ray_future.result()
        except Exception as error:
            self._fail_for_good(self._died(error))
            return
        if readiness.load_error is not None:
            self._fail_for_good(self._load_failed(readiness.load_error))
            self._release_actor()  # its resources may serve another actor meanwhile
            return
        self._ready_with(readiness)
        if self._load_timer is not None:
            self._load_timer.cancel()

    def _check_loaded(self) -> None:
        if not self._ready.is_set():
            self._fail_for_good(self._load_timed_out())
            self._release_actor()

    def _on_result(self, request_id: int, ray_future: Future[Any]) -> None:
        error = ray_future.exception()
        if isinstance(error, self._ray.exceptions.RayActorError):
            error = self._fail_for_good(self._died(error))
        elif isinstance(error, ModelNotLoadedError):
            # `ready` told this too, but its callback may not have run yet. Ray's error wraps
            # the actor's exception as `cause`.
            error = self._fail_for_good(self._load_failed(getattr(error, "cause", error).args[0]))
        rows = None if error is not None else ray_future.result()
        self._deliver([Reply(request_id, rows, error)])

    def _died(self, error: BaseException) -> RayLLMError:
        restarts = (
            f" after {self.max_restarts} restart(s)"
            if self.max_restarts
            else " (pass `max_restarts` to have Ray restart it)"
        )
        return RayLLMError(
            f"The Ray actor of {self!r} died{restarts}, so this RayLLM cannot generate. "
            f"Ray says: {error}"
        )

    def _load_failed(self, remote_traceback: str) -> RayLLMError:
        return RayLLMError(
            f"`load_llm_fn` failed in the Ray actor ({error_summary(remote_traceback)}), so this "
            "RayLLM cannot generate.",
            remote_traceback=remote_traceback,
        )
