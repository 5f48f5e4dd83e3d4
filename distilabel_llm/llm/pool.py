"""`LLMPool`: one generation job spread over several LLMs, processes or devices.

Two strategies. `"spread"` (legacy distilabel's) gives every member a share of each row's
generations, so each row mixes the models: the choice for preference datasets. `"balance"` cuts
the job into small units that members pull when free, so faster members do more and N replicas
finish about N times faster: the choice for data-parallel replicas. Either way, the work of a
member that fails for good is re-run on the others.
"""

from __future__ import annotations

import collections
import queue
import random
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Deque,
    Dict,
    List,
    Literal,
    Optional,
    Sequence,
    Union,
)

from distilabel_llm.errors import PoolExhaustedError
from distilabel_llm.llm._scheduling import Unit, balanced_units, spread_units
from distilabel_llm.llm.base import LLM, ProgressCallback, logger, report_progress
from distilabel_llm.llm.outputs import LLMOutput
from distilabel_llm.llm.process import LoadLLMFn, ProcessLLM
from distilabel_llm.tasks.base import Task
from distilabel_llm.utils.checks import check_positive_int
from distilabel_llm.utils.lifecycle import ClosingContext

if TYPE_CHECKING:
    from types import TracebackType

__all__ = ["LLMPool", "PoolStrategy"]

PoolStrategy = Literal["spread", "balance"]
Member = Union[ProcessLLM, LLM]
MemberProgressCallback = Callable[[int, int], None]

# Units each member holds at once under "balance": one running, one queued behind it so the
# member never waits on the bridge between two units.
_UNITS_IN_FLIGHT = 2


class LLMPool(ClosingContext):
    """Generates with several LLMs at once, as if they were one.

    Args:
        llms: two or more `ProcessLLM`s (or plain `LLM`s) whose tasks are the same class or
            siblings of one parent class.
        strategy: `"spread"` to give each member a share of every row's generations (rows mix
            the models); `"balance"` to let members pull small units of work when free.
        seed: seeds the random choice of which members make a row's extra generations.

    Raises:
        ValueError: if `llms` has fewer than two members, a member that is not an LLM, or
            members with unrelated tasks, or `strategy` is unknown.
    """

    def __init__(
        self,
        llms: Sequence[Member],
        strategy: PoolStrategy = "spread",
        seed: Optional[int] = None,
    ) -> None:
        llms = list(llms)
        if len(llms) < 2:
            raise ValueError(
                "The `llms` argument must contain at least 2 `ProcessLLM`s. If you want to use "
                "a single `ProcessLLM`, use the `ProcessLLM` directly instead."
            )
        if not all(isinstance(llm, (ProcessLLM, LLM)) for llm in llms):
            raise ValueError("The `llms` argument must contain only `ProcessLLM`s.")
        _check_tasks(llms)
        if strategy not in ("spread", "balance"):
            raise ValueError(f"`strategy` must be 'spread' or 'balance', not {strategy!r}.")
        self.llms: List[Member] = llms
        self.strategy: PoolStrategy = strategy
        self._random = random.Random(seed)
        self._executors: Dict[int, ThreadPoolExecutor] = {}
        self._executors_lock = threading.Lock()

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

        Each member's child sees only its device, through `CUDA_VISIBLE_DEVICES`.

        Args:
            task: the task of every member.
            load_llm_fn: builds the model in each child; it sees one GPU, as device 0.
            devices: the GPU indices (or UUIDs) to use, one member each.
            strategy: as for `LLMPool`; "balance" suits replicas.
            **process_kwargs: passed to each `ProcessLLM` (`env` is merged).
        """
        env = dict(process_kwargs.pop("env", None) or {})
        return cls(
            [
                ProcessLLM(
                    task,
                    load_llm_fn,
                    env={**env, "CUDA_VISIBLE_DEVICES": str(device)},
                    **process_kwargs,
                )
                for device in devices
            ],
            strategy=strategy,
        )

    @classmethod
    def from_replicas(
        cls,
        task: Task,
        load_llm_fn: LoadLLMFn,
        replicas: int,
        strategy: PoolStrategy = "balance",
        **process_kwargs: Any,
    ) -> LLMPool:
        """A pool of `replicas` identical `ProcessLLM`s (CPU models, or GPUs chosen in `env`)."""
        return cls(
            [ProcessLLM(task, load_llm_fn, **process_kwargs) for _ in range(replicas)],
            strategy=strategy,
        )

    @property
    def task(self) -> Task:
        """The task of the pool's first member."""
        return self.llms[0].task

    @property
    def return_futures(self) -> bool:
        """Always False: `generate` returns the outputs."""
        return False

    @property
    def member_names(self) -> List[str]:
        """A label per member for progress displays: its model, and its GPU when pinned."""
        names = []
        for index, llm in enumerate(self.llms):
            name = f"#{index} {llm.model_name}"
            device = getattr(llm, "env", {}).get("CUDA_VISIBLE_DEVICES")
            names.append(f"{name} (GPU {device})" if device is not None else name)
        return names

    def generate(
        self,
        inputs: Sequence[Dict[str, Any]],
        num_generations: int = 1,
        progress_callback_func: Optional[ProgressCallback] = None,
        member_progress_callback_func: Optional[MemberProgressCallback] = None,
    ) -> List[List[LLMOutput]]:
        """Generates `num_generations` outputs for every row, using every member.

        Several calls may run at once from different threads; they share the members.

        Args:
            inputs: the rows, each a dict with the task's input keys.
            num_generations: outputs per row.
            progress_callback_func: called as `progress_callback_func(advance=k)` as work
                completes; the advances sum to `len(inputs) * num_generations`.
            member_progress_callback_func: called as `(member_index, advance)` with the same
                advances, telling which member did the work.

        Returns:
            `len(inputs)` rows of `num_generations` outputs, in input order; each output's
            `model_name` tells which model made it.

        Raises:
            PoolExhaustedError: if every member failed for good before the work was done.
        """
        inputs = list(inputs)
        check_positive_int("num_generations", num_generations)
        if not inputs:
            return []
        job = _Job(
            self, inputs, num_generations, progress_callback_func, member_progress_callback_func
        )
        return job.run()

    def teardown(self, wait: bool = True) -> None:
        """Tears every member down. Idempotent.

        Args:
            wait: let each member finish its in-flight work first; with False, `ProcessLLM`
                members stop at once and their in-flight work fails.
        """
        for executor in self._executors.values():
            executor.shutdown(wait=wait, cancel_futures=not wait)
        self._executors.clear()
        for llm in self.llms:
            if isinstance(llm, ProcessLLM):
                llm.teardown(wait=wait)
            else:
                llm.teardown()

    close = teardown

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        # Leaving by an exception (Ctrl-C included), nobody waits for the results: stop now.
        self.teardown(wait=exc_type is None)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(llms={self.llms!r}, strategy={self.strategy!r})"

    def _submit(
        self, member: int, inputs: List[Dict[str, Any]], num_generations: int
    ) -> Future[Any]:
        """Starts a member's `generate` and returns its future, for members of every kind."""
        llm = self.llms[member]
        if llm.return_futures:
            return llm.generate(inputs, num_generations=num_generations)
        with self._executors_lock:  # calls on the pool may run from several threads
            if member not in self._executors:
                self._executors[member] = ThreadPoolExecutor(
                    1, thread_name_prefix=f"LLMPool-{member}"
                )
            executor = self._executors[member]
        return executor.submit(llm.generate, inputs, num_generations)


class _Job:
    """One `LLMPool.generate` call: hands units to members and gathers what they return."""

    def __init__(
        self,
        pool: LLMPool,
        inputs: List[Dict[str, Any]],
        num_generations: int,
        progress: Optional[ProgressCallback],
        member_progress: Optional[MemberProgressCallback],
    ) -> None:
        self.pool = pool
        self.inputs = inputs
        self.progress = progress
        self.member_progress = member_progress
        members = len(pool.llms)
        self.balanced = pool.strategy == "balance"
        self.alive = [getattr(llm, "failure", None) is None for llm in pool.llms]
        self.failures: Dict[int, BaseException] = {}
        self.rows: List[List[Optional[LLMOutput]]] = [[None] * num_generations for _ in inputs]
        self.shared: Deque[Unit] = collections.deque()
        self.own: List[Deque[Unit]] = [collections.deque() for _ in range(members)]
        if self.balanced:
            self.shared.extend(balanced_units(len(inputs), num_generations, members))
        else:
            for unit in spread_units(len(inputs), num_generations, members, pool._random):
                self.own[unit.member].append(unit)
        self.in_flight: Dict[Future[Any], tuple[Unit, int]] = {}
        self.load = [0] * members
        self.events: queue.SimpleQueue[Future[Any]] = queue.SimpleQueue()

    def run(self) -> List[List[LLMOutput]]:
        try:
            while True:
                self._dispatch()
                if not self.in_flight:
                    break
                self._collect(self.events.get())
        except BaseException:
            for future in list(self.in_flight):
                future.cancel()
            raise
        return self.rows  # type: ignore[return-value]  # every slot is filled by now

    def _dispatch(self) -> None:
        for member, alive in enumerate(self.alive):
            if not alive:
                continue
            while self._wants_work(member):
                unit = self._next_unit(member)
                if unit is None:
                    break
                self._start(unit, member)

    def _wants_work(self, member: int) -> bool:
        return not self.balanced or self.load[member] < _UNITS_IN_FLIGHT

    def _next_unit(self, member: int) -> Optional[Unit]:
        if self.own[member]:
            return self.own[member].popleft()
        if not self.balanced:
            return None
        if self.shared:
            return self.shared.popleft()
        # A member working for another call on this pool is not idle: no backup for it.
        if self.load[member] == 0 and not getattr(self.pool.llms[member], "in_flight", 0):
            return self._backup_for(member)
        return None

    def _backup_for(self, member: int) -> Optional[Unit]:
        """An idle member re-runs the oldest unit still running elsewhere; first answer wins.

        This bounds the end of a job by the fastest member, not the slowest.
        """
        for unit, owner in self.in_flight.values():
            if owner != member and not unit.done and not unit.backed_up:
                unit.backed_up = True
                return unit
        return None

    def _start(self, unit: Unit, member: int) -> None:
        future = self.pool._submit(
            member, [self.inputs[row] for row in unit.rows], unit.num_generations
        )
        self.in_flight[future] = (unit, member)
        self.load[member] += 1
        future.add_done_callback(self.events.put)

    def _collect(self, future: Future[Any]) -> None:
        unit, member = self.in_flight.pop(future)
        self.load[member] -= 1
        if future.cancelled() or unit.done:
            return
        error = future.exception()
        if error is None:
            self._complete(unit, member, future.result())
        elif self._member_lost(member, error):
            self._fail_member(member, error)
            self._requeue(unit)
        else:
            raise error

    def _complete(self, unit: Unit, member: int, rows: List[List[LLMOutput]]) -> None:
        unit.done = True
        for row, offset, outputs in zip(unit.rows, unit.offsets, rows):
            self.rows[row][offset : offset + unit.num_generations] = outputs
        for other, (twin, _) in list(self.in_flight.items()):
            if twin is unit:
                other.cancel()
        advance = len(unit.rows) * unit.num_generations
        if self.progress is not None:
            report_progress(self.progress, advance=advance)
        if self.member_progress is not None:
            report_progress(self.member_progress, member, advance)

    def _member_lost(self, member: int, error: BaseException) -> bool:
        """Whether `error` means the member can no longer generate (not a bad request)."""
        return (
            isinstance(error, TimeoutError)
            or getattr(self.pool.llms[member], "failure", None) is not None
        )

    def _fail_member(self, member: int, error: BaseException) -> None:
        if not self.alive[member]:
            return
        self.alive[member] = False
        self.failures[member] = error
        survivors = [m for m, alive in enumerate(self.alive) if alive]
        if not survivors:
            reasons = "\n".join(f"- member #{m}: {error}" for m, error in self.failures.items())
            raise PoolExhaustedError(
                f"Every member of the LLMPool failed, so {self._rows_left()} row(s) cannot be "
                f"generated:\n{reasons}"
            )
        logger.warning(
            "LLMPool member #%d failed for good (%s); its unfinished work is re-run on the "
            "%d remaining member(s).",
            member,
            str(error).splitlines()[0],
            len(survivors),
        )
        for unit in self.own[member]:
            self._requeue(unit)
        self.own[member].clear()

    def _requeue(self, unit: Unit) -> None:
        if unit.done:
            return
        unit.backed_up = False
        if self.balanced:
            self.shared.appendleft(unit)
            return
        survivors = [m for m, alive in enumerate(self.alive) if alive]
        self.own[survivors[self.pool._random.randrange(len(survivors))]].append(unit)

    def _rows_left(self) -> int:
        return sum(any(output is None for output in row) for row in self.rows)


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
