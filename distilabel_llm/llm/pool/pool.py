"""`LLMPool`: one generation job spread over several LLMs, processes or devices.

Two strategies. `"spread"` (legacy distilabel's) gives every member a share of each row's
generations, so each row mixes the models: the choice for preference datasets. `"balance"` cuts
the job into small units that members pull when free, so faster members do more and N replicas
finish about N times faster: the choice for data-parallel replicas. Either way, the work of a
member that fails for good is re-run on the others.
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
    Literal,
    Mapping,
    Optional,
    Sequence,
    Union,
)

from distilabel_llm.llm.core.conversations import Conversation, generate_outputs
from distilabel_llm.llm.core.llm import LLM, ProgressCallback
from distilabel_llm.llm.core.outputs import GenerateOutput, LLMOutput
from distilabel_llm.llm.members._worker import OFFLINE_ELSEWHERE
from distilabel_llm.llm.members.process import LoadLLMFn, ProcessLLM
from distilabel_llm.llm.members.remote import RemoteLLM, model_name_now
from distilabel_llm.llm.pool._busy_clock import BusyClock
from distilabel_llm.llm.pool._isolation import Isolation
from distilabel_llm.llm.pool._scheduling import Job, MemberProgressCallback
from distilabel_llm.tasks.base import Task
from distilabel_llm.utils.checks import check_positive_int
from distilabel_llm.utils.lifecycle import StoppingContext

if TYPE_CHECKING:
    from distilabel_llm.llm.members._ray_cluster import PlacementStrategy

__all__ = ["LLMPool", "PoolStrategy"]

PoolStrategy = Literal["spread", "balance"]
Member = Union[RemoteLLM, LLM]

DEFAULT_STALL_TIMEOUT = 600.0


class LLMPool(StoppingContext):
    """Generates with several LLMs at once, as if they were one.

    Args:
        llms: two or more `ProcessLLM`s, `RayLLM`s or plain `LLM`s, mixed as you like, whose
            tasks are the same class or siblings of one parent class.
        strategy: `"spread"` to give each member a share of every row's generations (rows mix
            the models); `"balance"` to let members pull small units of work when free.
        seed: seeds the random choice of which members make a row's extra generations.
        stall_timeout: under "spread", seconds a unit may run without an answer before an
            idle member of another model re-runs it (first answer wins, so those rows lose
            their mix of models rather than wait forever on a hung member); None never does.
            Members of the same model back each other up at once, as under "balance".

    Raises:
        ValueError: if `llms` has fewer than two members, a member that is not an LLM, or
            members with unrelated tasks, or `strategy` is unknown.
    """

    def __init__(
        self,
        llms: Sequence[Member],
        strategy: PoolStrategy = "spread",
        seed: Optional[int] = None,
        stall_timeout: Optional[float] = DEFAULT_STALL_TIMEOUT,
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
            if getattr(llm, "use_offline_batch_generation", False):
                raise ValueError(OFFLINE_ELSEWHERE.format(name=type(llm).__qualname__))
        if strategy not in ("spread", "balance"):
            raise ValueError(f"`strategy` must be 'spread' or 'balance', not {strategy!r}.")
        if stall_timeout is not None and not stall_timeout > 0:
            raise ValueError(f"`stall_timeout` must be positive or None, not {stall_timeout!r}.")
        self.llms: List[Member] = llms
        self.strategy: PoolStrategy = strategy
        self._random = random.Random(seed)
        self.stall_timeout = stall_timeout
        self._isolation = Isolation()
        self._busy = BusyClock(len(llms))
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
    def return_futures(self) -> bool:
        """Always False: `generate` returns the outputs."""
        return False

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
            model = model_name_now(llm)
            if model is None:
                model = "failed" if getattr(llm, "failure", None) is not None else "loading"
            location = getattr(llm, "location", None)
            names.append(f"#{index} {model} ({location})" if location else f"#{index} {model}")
        return names

    def generate(
        self,
        inputs: Sequence[Dict[str, Any]],
        num_generations: int = 1,
        progress_callback_func: Optional[ProgressCallback] = None,
        member_progress_callback_func: Optional[MemberProgressCallback] = None,
        generation_kwargs: Optional[Dict[str, Any]] = None,
    ) -> List[List[LLMOutput]]:
        """Generates `num_generations` outputs for every row, using every member.

        Several calls may run at once from different threads; they share the members. Every
        member gets the call's `generation_kwargs`, and each unit of work the first generation
        slot it fills in each row (`generation_offset`), so that slot `k` of a row is sampled
        as one model alone would sample it, whichever member makes it.

        Args:
            inputs: the rows, each a dict with the task's input keys.
            num_generations: outputs per row.
            progress_callback_func: called as `progress_callback_func(advance=k)` as work
                completes; the advances sum to `len(inputs) * num_generations`.
            member_progress_callback_func: called as `(member_index, advance)` with the same
                advances, telling which member did the work; also with `output_tokens=` (the
                tokens of those generations) when it takes that keyword.
            generation_kwargs: settings for this call, over each member's defaults.

        Returns:
            `len(inputs)` rows of `num_generations` outputs, in input order; each output's
            `model_name` tells which model made it.

        Raises:
            PoolExhaustedError: if every member failed for good before the work was done (or
                before the call: a pool with no live member raises every time).
            GenerationSettingsError: (a `ValueError`) for a setting a member does not take.
        """
        if self._closed:
            raise RuntimeError("This LLMPool has been torn down; create a new one to generate.")
        inputs = list(inputs)
        check_positive_int("num_generations", num_generations)
        settings = self.check_generation_kwargs(generation_kwargs)
        if not inputs:
            return []
        job = Job(
            self.llms,
            self._submit,
            inputs,
            num_generations,
            settings,
            balanced=self.strategy == "balance",
            rng=self._random,
            isolation=self._isolation,
            busy=self._busy,
            closed=lambda: self._closed,
            stall_timeout=self.stall_timeout,
            progress=progress_callback_func,
            member_progress=member_progress_callback_func,
        )
        return job.run()

    def generate_outputs(
        self,
        inputs: Sequence[Conversation],
        num_generations: int = 1,
        **generation_kwargs: Any,
    ) -> List[GenerateOutput]:
        """distilabel 1.x's call; see `LLM.generate_outputs`. Waits for the results."""
        return generate_outputs(self, inputs, num_generations, generation_kwargs or None)

    def check_generation_kwargs(
        self, generation_kwargs: Optional[Dict[str, Any]]
    ) -> Dict[str, Any]:
        """`generation_kwargs` checked by every member (see `RemoteLLM.check_generation_kwargs`
        for members still loading).

        Raises:
            GenerationSettingsError: (a `ValueError`) naming the setting and the member.
        """
        checked: Dict[str, Any] = {}
        for llm in self.llms:
            checked = llm.check_generation_kwargs(generation_kwargs)
        return checked

    def teardown(self, wait: bool = True) -> None:
        """Tears every member down. Idempotent.

        Args:
            wait: let each member finish its in-flight work first; with False, `ProcessLLM`
                members stop at once and their in-flight work fails.
        """
        self._closed = True
        for executor in self._executors.values():
            executor.shutdown(wait=wait, cancel_futures=not wait)
        self._executors.clear()
        for llm in self.llms:
            llm.teardown(wait=wait)
        while self._on_teardown:
            self._on_teardown.pop()()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(llms={self.llms!r}, strategy={self.strategy!r})"

    def _submit(
        self,
        member: int,
        inputs: List[Dict[str, Any]],
        num_generations: int,
        settings: Dict[str, Any],
    ) -> Future[Any]:
        """Starts a member's `generate` and returns its future, for members of every kind."""
        llm = self.llms[member]
        if llm.return_futures:
            return llm.generate(inputs, num_generations=num_generations, generation_kwargs=settings)
        with self._executors_lock:  # calls on the pool may run from several threads
            if member not in self._executors:
                self._executors[member] = ThreadPoolExecutor(
                    1, thread_name_prefix=f"LLMPool-{member}"
                )
            executor = self._executors[member]
        return executor.submit(llm.generate, inputs, num_generations, None, settings)


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
