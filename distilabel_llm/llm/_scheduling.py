"""How an `LLMPool` call runs: the job cut into units, handed to members, gathered back."""

from __future__ import annotations

import collections
import math
import queue
import random
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Deque, Dict, List, Optional, Tuple

from distilabel_llm.errors import PoolExhaustedError
from distilabel_llm.llm.base import ProgressCallback, logger, report_progress
from distilabel_llm.llm.outputs import LLMOutput

if TYPE_CHECKING:
    from distilabel_llm.llm.pool import LLMPool

MemberProgressCallback = Callable[[int, int], None]

# Units each member holds at once under "balance": one running, one queued behind it so the
# member never waits on the bridge between two units.
_UNITS_IN_FLIGHT = 2
# Under "balance", aim for this many units per member: enough that a fast member can take
# more of them and the last ones are short, few enough that the bridge's cost stays negligible.
_UNITS_PER_MEMBER = 16
# ...and never more row-generations per unit than this, so a backend still gets useful batches
# without a slow member sitting on a large share of the job.
_MAX_UNIT_SIZE = 32


@dataclass(eq=False)
class Unit:
    """Some rows and how many generations to make for each, and where they go in the rows.

    Attributes:
        rows: positions of the rows in the job's inputs.
        offsets: for each row, the index of its first generation slot this unit fills.
        num_generations: generations to make for each row.
        member: the member this unit is meant for ("spread"), or None for any ("balance").
        done: set once one member has returned it.
        backed_up: set while a second member also runs it.
    """

    rows: List[int]
    offsets: List[int]
    num_generations: int
    member: Optional[int] = None
    done: bool = field(default=False)
    backed_up: bool = field(default=False)


def balanced_units(num_rows: int, num_generations: int, members: int) -> List[Unit]:
    """Equal small units, in row order, for members to pull from a shared queue."""
    work = num_rows * num_generations
    size = max(1, min(_MAX_UNIT_SIZE, math.ceil(work / (members * _UNITS_PER_MEMBER))))
    if num_generations <= size:
        per_unit = max(1, size // num_generations)
        chunks = [
            list(range(start, min(start + per_unit, num_rows)))
            for start in range(0, num_rows, per_unit)
        ]
        return [Unit(rows, [0] * len(rows), num_generations) for rows in chunks]
    return [
        Unit([row], [start], min(size, num_generations - start))
        for row in range(num_rows)
        for start in range(0, num_generations, size)
    ]


def spread_units(
    num_rows: int, num_generations: int, members: int, rng: random.Random
) -> List[Unit]:
    """Each member's share of every row: `num_generations // members` generations each, the
    remainder to members taken in turn from a random order, so that every row mixes the models
    and no member gets more than one extra generation per `members` rows than another.

    A row's generations are ordered by member. Each member gets at most two units: the rows
    where it makes the base count, and those where it makes one more.
    """
    base, extra = divmod(num_generations, members)
    order = rng.sample(range(members), members)
    groups: Dict[Tuple[int, int], Unit] = {}
    for row in range(num_rows):
        lucky = {order[(row * extra + k) % members] for k in range(extra)}
        offset = 0
        for member in range(members):
            count = base + (member in lucky)
            if count:
                unit = groups.setdefault((member, count), Unit([], [], count, member))
                unit.rows.append(row)
                unit.offsets.append(offset)
            offset += count
    return list(groups.values())


class Job:
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
        except BaseException as error:
            for future in list(self.in_flight):
                future.cancel()
            if self.pool._closed and not isinstance(error, KeyboardInterrupt):
                # Members fail because the pool is going away: no failover, one clear error.
                raise RuntimeError(
                    "The LLMPool was torn down before this call finished."
                ) from error
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
        elif self.pool._closed:
            raise error  # `run` reports it as the pool's teardown
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
