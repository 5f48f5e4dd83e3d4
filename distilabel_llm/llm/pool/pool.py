"""`LLMPool`: one generation job spread over several LLMs, processes or devices.

Three strategies. `"spread"` (legacy distilabel's) gives every member a share of each row's
generations, so each row mixes the models: the choice for preference datasets. `"balance"` cuts
the job into small units that members pull when free, so faster members do more and N replicas
finish about N times faster: the choice for data-parallel replicas. `"fallback"` sends every
unit to the first member, in the given order, able to take it: a primary model, and the ones to
use while it is unavailable. Whatever the strategy, the work of a member that fails for good is
re-run on the others, and a member that fails for a transient reason (a rate limit, a server
error) is cooled down for a while, its failed rows re-run on another member.

A pool keeps the contract of every LLM kind (`BaseLLM`): `submit` returns a future at once
(each call runs on a thread of the pool's, waiting on its members), and `generate` waits for
it.
"""

from __future__ import annotations

import os
import random
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Dict,
    List,
    Mapping,
    Optional,
    Sequence,
    Union,
)

from distilabel_llm.llm.core.contract import (
    BaseLLM,
    LoadLLMFn,
    MemberProgressCallback,
    Outputs,
    ProgressCallback,
)
from distilabel_llm.llm.core.llm import LLM
from distilabel_llm.llm.core.settings import GenerationRequest, GenerationSettings
from distilabel_llm.llm.members._protocol import OFFLINE_ELSEWHERE
from distilabel_llm.llm.members.process import ProcessLLM
from distilabel_llm.llm.members.remote import RemoteLLM
from distilabel_llm.llm.pool._busy_clock import BusyClock
from distilabel_llm.llm.pool._call import PoolCall
from distilabel_llm.llm.pool._call_threads import CallThreads
from distilabel_llm.llm.pool._cooldowns import Cooldowns
from distilabel_llm.llm.pool._isolation import Isolation
from distilabel_llm.llm.pool._units import PoolStrategy
from distilabel_llm.tasks.base import Task

if TYPE_CHECKING:
    from distilabel_llm.llm.members._ray_cluster import PlacementStrategy

__all__ = ["LLMPool", "PoolStrategy"]

Member = Union[RemoteLLM, LLM]

STRATEGIES = ("spread", "balance", "fallback")
DEFAULT_STALL_TIMEOUT = 600.0
# A member's first cooldown after a transient failure, and the longest. An API member reports
# one only after its client's own retries (OpenAILLM: 5, over tens of seconds), so the provider
# has refused for a while already: a few seconds' rest, doubling while probes fail, lets a rate
# limit's window pass without leaving a member out of a long job for long once it is back.
DEFAULT_COOLDOWN = 5.0
DEFAULT_MAX_COOLDOWN = 120.0


# Calls a pool runs at once, per member: enough that every member always holds queued units
# while a pipeline collects and writes the oldest batch. Measured on 4 replicas with batches of
# 8 rows: 2 calls in all left members idle (1.20x the pool's own time on the same rows), 4
# gave 1.05x, 8 gave 1.00x.
_CALLS_PER_MEMBER = 2
_MIN_CALLS = 4


class LLMPool(BaseLLM):
    """Generates with several LLMs at once, as if they were one.

    Args:
        llms: two or more `ProcessLLM`s, `RayLLM`s or plain `LLM`s, mixed as you like, whose
            tasks are the same class or siblings of one parent class.
        strategy: `"spread"` to give each member a share of every row's generations (rows mix
            the models); `"balance"` to let members pull small units of work when free;
            `"fallback"` to send every unit to the first member, in the order of `llms`, that
            is alive and not cooling down (a primary, then its backups).
        seed: seeds the random choice of which members make a row's extra generations.
        stall_timeout: under "spread", seconds a unit may run without an answer before an
            idle member of another model re-runs it (first answer wins, so those rows lose
            their mix of models rather than wait forever on a hung member); None never does.
            Members of the same model back each other up at once, as under "balance".
        cooldown: seconds a member gets no new work after a request failed there for a
            transient reason (outputs marked `transient`: a rate limit after the client's
            retries, a server error, a timeout, a lost connection); each further failure in a
            row doubles it. Then one request probes the member; a success ends its cooldowns.
            The failed rows are re-run on another member (under "spread", one of the same
            model) up to 3 members in all, then keep their `error`. 0 never cools a member.
        max_cooldown: the longest cooldown, in seconds.

    Raises:
        ValueError: if `llms` has fewer than two members, a member that is not an LLM, or
            members with unrelated tasks, or `strategy` is unknown, or `stall_timeout`,
            `cooldown` or `max_cooldown` out of range.
    """

    def __init__(
        self,
        llms: Sequence[Member],
        strategy: PoolStrategy = "spread",
        seed: Optional[int] = None,
        stall_timeout: Optional[float] = DEFAULT_STALL_TIMEOUT,
        cooldown: float = DEFAULT_COOLDOWN,
        max_cooldown: float = DEFAULT_MAX_COOLDOWN,
    ) -> None:
        llms = list(llms)
        if len(llms) < 2:
            raise ValueError(
                "The `llms` argument must contain at least 2 `ProcessLLM`s. If you want to use "
                "a single `ProcessLLM`, use the `ProcessLLM` directly instead."
            )
        if not all(isinstance(llm, (RemoteLLM, LLM)) for llm in llms):
            raise ValueError(
                "The `llms` argument must contain only `ProcessLLM`s, `RayLLM`s or `LLM`s."
            )
        _check_tasks(llms)
        for llm in llms:
            if llm.offline:
                raise ValueError(OFFLINE_ELSEWHERE.format(name=type(llm).__qualname__))
        if strategy not in STRATEGIES:
            raise ValueError(
                f"`strategy` must be 'spread', 'balance' or 'fallback', not {strategy!r}."
            )
        if stall_timeout is not None and not stall_timeout > 0:
            raise ValueError(f"`stall_timeout` must be positive or None, not {stall_timeout!r}.")
        for name, seconds in (("cooldown", cooldown), ("max_cooldown", max_cooldown)):
            if not isinstance(seconds, (int, float)) or not seconds >= 0:
                raise ValueError(f"`{name}` must be 0 or more seconds, not {seconds!r}.")
        self.llms: List[Member] = llms
        self.strategy: PoolStrategy = strategy
        self._random = random.Random(seed)
        self.stall_timeout = stall_timeout
        self._isolation = Isolation()
        self._cooldowns = Cooldowns(len(llms), cooldown, max_cooldown, self._isolation.wake)
        self._busy = BusyClock(len(llms))
        self._calls = CallThreads("LLMPool-call", self.calls_ahead)
        self._executors: Dict[int, ThreadPoolExecutor] = {}
        self._executors_lock = threading.Lock()
        self._closed = False
        # Called after the members' teardown: what the pool reserved for them (a placement group).
        self._on_teardown: List[Callable[[], None]] = []

    @classmethod
    def from_devices(
        cls,
        task: Task,
        load_llm_fn: LoadLLMFn,
        devices: Sequence[Union[int, str]],
        strategy: PoolStrategy = "balance",
        **process_kwargs: Any,
    ) -> LLMPool:
        """A pool of replicas of one model, one `ProcessLLM` per GPU.

        Each member's child sees only its device, through `CUDA_VISIBLE_DEVICES`, and gets an
        equal share of the CPU cores (see `from_replicas`).

        Args:
            task: the task of every member.
            load_llm_fn: builds the model in each child; it sees one GPU, as device 0.
            devices: the GPU indices (or UUIDs) to use, one member each.
            strategy: as for `LLMPool`; "balance" suits replicas.
            **process_kwargs: passed to each `ProcessLLM` (`env` is merged).
        """
        env = _replica_env(process_kwargs.pop("env", None), len(devices))
        members = [
            ProcessLLM(
                task,
                load_llm_fn,
                env={**env, "CUDA_VISIBLE_DEVICES": str(device)},
                **process_kwargs,
            )
            for device in devices
        ]
        return cls(members, strategy=strategy)

    @classmethod
    def from_replicas(
        cls,
        task: Task,
        load_llm_fn: LoadLLMFn,
        replicas: int,
        strategy: PoolStrategy = "balance",
        **process_kwargs: Any,
    ) -> LLMPool:
        """A pool of `replicas` identical `ProcessLLM`s (CPU models, or GPUs chosen in `env`).

        Each child gets an equal share of the CPU cores: `OMP_NUM_THREADS` and
        `MKL_NUM_THREADS` are set to `cores // replicas` (at least 1) unless `env` or this
        process's environment sets them. Left at their default, every replica's math library
        would start a thread per core, and replicas that oversubscribe the cores this way can
        run many times slower than one process alone.
        """
        env = _replica_env(process_kwargs.pop("env", None), replicas)
        return cls(
            [ProcessLLM(task, load_llm_fn, env=env, **process_kwargs) for _ in range(replicas)],
            strategy=strategy,
        )

    @classmethod
    def from_ray(
        cls,
        task: Task,
        load_llm_fn: LoadLLMFn,
        replicas: int,
        strategy: PoolStrategy = "balance",
        *,
        placement_strategy: Optional[PlacementStrategy] = None,
        **ray_kwargs: Any,
    ) -> LLMPool:
        """A pool of `replicas` identical `RayLLM`s, placed by Ray on a cluster's nodes.

        Example:
            >>> pool = LLMPool.from_ray(task, load_llm_fn, replicas=8, num_gpus=1)

        Args:
            task: the task of every member.
            load_llm_fn: builds the model in each actor.
            replicas: how many actors to start.
            strategy: as for `LLMPool`; "balance" suits replicas.
            placement_strategy: `"PACK"`, `"SPREAD"`, `"STRICT_PACK"` or `"STRICT_SPREAD"` to
                reserve every replica's resources at once in a placement group (released at
                teardown); None lets Ray place each actor on its own.
            **ray_kwargs: passed to each `RayLLM`: `num_gpus`, `num_cpus`, `resources`,
                `max_restarts`, `address`, `check_resources`, `actor_options`...

        Raises:
            ClusterTooSmallError: (a `ValueError`) if the cluster cannot hold every replica
                at once.
        """
        from distilabel_llm.llm.members._ray_cluster import ray_members
        from distilabel_llm.llm.members.ray import RayLLM

        if not isinstance(replicas, int) or replicas < 2:
            raise ValueError(
                f"A pool needs 2 or more `replicas`, not {replicas!r}; for one, use `RayLLM`."
            )
        members, release = ray_members(
            RayLLM, task, load_llm_fn, replicas, placement_strategy, ray_kwargs
        )
        pool = cls(members, strategy=strategy)
        if release is not None:
            pool._on_teardown.append(release)
        return pool

    @property
    def task(self) -> Task:
        """The task of the pool's first member."""
        return self.llms[0].task

    @property
    def model_name(self) -> str:
        """The members' models, each named once (waits for members still loading)."""
        return ", ".join(dict.fromkeys(llm.model_name for llm in self.llms))

    @property
    def model_name_now(self) -> Optional[str]:
        """The members' models, once every member's is known; None before."""
        names = [llm.model_name_now for llm in self.llms]
        return None if None in names else ", ".join(dict.fromkeys(names))  # type: ignore[arg-type]

    @property
    def members(self) -> List[Member]:
        """The pool's members: `llms`."""
        return self.llms

    @property
    def busy_seconds(self) -> List[float]:
        """Seconds each member has had work in flight since the pool was made, counted once
        however many calls kept it busy: set against wall time, how busy each member was."""
        return self._busy.seconds()

    @property
    def member_names(self) -> List[str]:
        """A label per member for progress displays: its model, and where it runs when known
        (its GPU, or its Ray node). Never waits: a member still loading is labelled
        "loading", one that failed "failed"."""
        names = []
        for index, llm in enumerate(self.llms):
            model = llm.model_name_now
            if model is None:
                model = "failed" if llm.failure is not None else "loading"
            location = llm.location
            names.append(f"#{index} {model} ({location})" if location else f"#{index} {model}")
        return names

    @property
    def calls_ahead(self) -> int:
        """Calls worth keeping submitted: enough that every member always has queued work."""
        return max(_MIN_CALLS, _CALLS_PER_MEMBER * len(self.llms))

    def max_cost(
        self,
        inputs: Sequence[Dict[str, Any]],
        num_generations: int = 1,
        generation_kwargs: Optional[Dict[str, Any]] = None,
    ) -> Optional[float]:
        """The most a call can cost: as if its dearest member made every generation (each is
        made by one member); None when any member's cost cannot be bounded."""
        costs = [llm.max_cost(inputs, num_generations, generation_kwargs) for llm in self.llms]
        return None if any(cost is None for cost in costs) else max(costs)  # type: ignore[type-var]

    def cost_bound_problem(
        self, generation_kwargs: Optional[Dict[str, Any]] = None
    ) -> Optional[str]:
        for index, llm in enumerate(self.llms):
            problem = llm.cost_bound_problem(generation_kwargs)
            if problem is not None:
                return f"The pool's member #{index}: {problem}"
        return None

    def generation_settings(
        self, generation_kwargs: Optional[Dict[str, Any]]
    ) -> GenerationSettings:
        """`generation_kwargs` checked by every member (see `RemoteLLM` for members still
        loading).

        Raises:
            GenerationSettingsError: (a `ValueError`) naming the setting and the member.
        """
        settings = GenerationSettings()
        for llm in self.llms:
            settings = llm.generation_settings(generation_kwargs)
        return settings

    def _submit(
        self,
        request: GenerationRequest,
        progress: Optional[ProgressCallback] = None,
        member_progress: Optional[MemberProgressCallback] = None,
    ) -> Future[Outputs]:
        """Spreads `request` over the members, on a thread of the pool's.

        Several calls may run at once; they share the members. Each unit of work carries the
        first generation slot it fills in each row, so that slot `k` of a row is sampled as
        one model alone would sample it, whichever member makes it. Every output's
        `model_name` tells which model made it.

        Raises:
            PoolExhaustedError: (now, or from the future) if every member failed for good
                before the work was done.
        """
        if self._closed:
            raise RuntimeError("This LLMPool has been torn down; create a new one to generate.")
        if not request.inputs:
            done: Future[Outputs] = Future()
            done.set_result([])
            return done
        call = PoolCall(
            self.llms,
            self._submit_to,
            request,
            strategy=self.strategy,
            rng=self._random,
            isolation=self._isolation,
            cooldowns=self._cooldowns,
            busy=self._busy,
            closed=lambda: self._closed,
            stall_timeout=self.stall_timeout,
            progress=progress,
            member_progress=member_progress,
        )
        future = self._calls.submit(call.run)
        future.add_done_callback(lambda done: call.stop() if done.cancelled() else None)
        return future

    def teardown(self, wait: bool = True) -> None:
        """Tears every member down. Idempotent.

        Args:
            wait: let each member finish its in-flight work first; with False, `ProcessLLM`
                members stop at once and their in-flight work fails.
        """
        self._closed = True
        self._calls.shutdown(RuntimeError("The LLMPool was torn down before this call started."))
        with self._executors_lock:  # a call's thread may be starting work meanwhile
            executors = list(self._executors.values())
            self._executors.clear()
        for executor in executors:
            executor.shutdown(wait=wait, cancel_futures=not wait)
        for llm in self.llms:
            llm.teardown(wait=wait)
        while self._on_teardown:
            self._on_teardown.pop()()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(llms={self.llms!r}, strategy={self.strategy!r})"

    def _submit_to(self, member: int, request: GenerationRequest) -> Future[Any]:
        """Starts `request` on a member and returns its future, for members of every kind: one
        computing in this process runs on a thread of its own, unless it runs its calls
        concurrently itself (an API model with `max_concurrency`: `rows_ahead`)."""
        llm = self.llms[member]
        if llm.return_futures or llm.rows_ahead:
            return llm._submit(request)
        with self._executors_lock:  # calls on the pool may run from several threads
            if self._closed:  # no thread may start once the teardown took them
                raise RuntimeError("The LLMPool was torn down before this call finished.")
            if member not in self._executors:
                self._executors[member] = ThreadPoolExecutor(
                    1, thread_name_prefix=f"LLMPool-{member}"
                )
            executor = self._executors[member]
        return executor.submit(lambda: llm._submit(request).result())


_THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


def _replica_env(env: Optional[Mapping[str, Union[str, int]]], replicas: int) -> Dict[str, str]:
    """`env` plus, where nobody chose them, thread counts that share the cores among replicas."""
    chosen = {name: str(value) for name, value in (env or {}).items()}
    share = str(max(1, (os.cpu_count() or 1) // max(1, replicas)))
    for name in _THREAD_VARIABLES:
        if name not in chosen and name not in os.environ:
            chosen[name] = share
    return chosen


def _check_tasks(llms: List[Member]) -> None:
    """Members' tasks must be of one class (or its subclasses), or of classes sharing one
    direct parent other than the `Task` base itself, which every task shares."""
    classes = [type(llm.task) for llm in llms]
    narrowest = min(classes, key=lambda cls: len(cls.__mro__))
    if all(issubclass(cls, narrowest) for cls in classes):
        return
    parents = {cls.__mro__[1] for cls in classes}
    if len(parents) == 1 and parents.pop() not in (Task, object):
        return
    raise ValueError(
        "All the `ProcessLLM` in `llms` must share the same task (either as the instance or the "
        "parent class)."
    )
