"""How one `LLMPool` call runs: its rows cut into units, handed to members, gathered back.

Beyond handing out work, a pool call keeps these promises:

- A member that dies or hangs does not lose work: its units are re-run on the others, and an
  idle member backs up a unit still running elsewhere (first answer wins).
- A row that crashes its member cannot take the pool down: the rows of a unit whose member died
  are re-run one at a time, each on a member running nothing else, so the row at fault is
  singled out; a row in flight at two deaths is not sent again and comes back with an `error`.
- A member that fails for a transient reason (outputs marked `transient`) is cooled down
  (`Cooldowns`), and the rows it failed are re-run on a member not yet tried, under "balance"
  and "fallback" on any, under "spread" on one of the same model; a row tried on
  `_MAX_TRANSIENT_TRIES` members, or with none left to try, keeps its error.
- Every slot of the result holds an output, or the call raises: never a silent `None`.
"""

from __future__ import annotations

import collections
import inspect
import logging
import queue
import random
import time
from concurrent.futures import CancelledError, Future
from functools import partial
from typing import Any, Callable, Dict, List, Optional, Sequence, Set, Tuple

from distilabel_llm.errors import PoolExhaustedError, ProcessLLMError
from distilabel_llm.llm.core._callbacks import report_progress
from distilabel_llm.llm.core.contract import BaseLLM, MemberProgressCallback, ProgressCallback
from distilabel_llm.llm.core.outputs import LLMOutput, output_tokens
from distilabel_llm.llm.core.settings import GenerationRequest
from distilabel_llm.llm.pool._busy_clock import BusyClock
from distilabel_llm.llm.pool._cooldowns import Cooldowns, transient_error
from distilabel_llm.llm.pool._isolation import Isolation
from distilabel_llm.llm.pool._queues import Queues
from distilabel_llm.llm.pool._units import (
    PoolStrategy,
    Unit,
    balanced_units,
    retry_units,
    spread_units,
)

Submit = Callable[[int, GenerationRequest], "Future[Any]"]

logger = logging.getLogger("distilabel_llm")

# Units each member holds at once under "balance": one running, one queued behind it so the
# member never waits on the bridge between two units.
_UNITS_IN_FLIGHT = 2
# A row in flight on this many members that died is not sent again.
_MAX_CRASHES_PER_ROW = 2
# A row that failed for a transient reason on this many members keeps its error.
_MAX_TRANSIENT_TRIES = 3


class PoolCall:
    """One call on an `LLMPool`: hands units to members and gathers what they return.

    Args:
        members: the pool's members.
        submit: starts a request on member `m` and returns its future.
        request: the call's rows, outputs per row and settings; each unit sends its rows with
            their first generation slots.
        strategy: "spread" (each member its share of every row), "balance" (units pulled by
            any member) or "fallback" (units to the first member, in order, able to take them).
        rng: the pool's random source (the order of extra generations under "spread").
        isolation: the work in flight on each member across the pool's calls, and the
            members reserved for a suspect row.
        cooldowns: the members cooling down after a transient failure, across the calls.
        closed: whether the pool has been torn down.
        stall_timeout: under "spread", seconds after which a unit still running may be backed
            up by a member of another model; None: only by members of its own model.
        progress, member_progress: the caller's progress callbacks.

    Raises:
        PoolExhaustedError: if no member can generate.
    """

    def __init__(
        self,
        members: Sequence[BaseLLM],
        submit: Submit,
        request: GenerationRequest,
        *,
        strategy: PoolStrategy,
        rng: random.Random,
        isolation: Isolation,
        cooldowns: Cooldowns,
        busy: BusyClock,
        closed: Callable[[], bool],
        stall_timeout: Optional[float],
        progress: Optional[ProgressCallback],
        member_progress: Optional[MemberProgressCallback],
    ) -> None:
        inputs, num_generations = request.inputs, request.num_generations
        self.members = list(members)
        self.submit = submit
        self.inputs = inputs
        self.settings = request.settings
        self.first_slots = request.settings.row_offsets(len(inputs))  # usually all 0
        self.stopped = False
        self.balanced = strategy == "balance"
        self.fallback = strategy == "fallback"
        self.rng = rng
        self.isolation = isolation
        self.cooldowns = cooldowns
        self.busy = busy
        self.closed = closed
        self.stall_timeout = stall_timeout
        self.progress = progress
        self.member_progress = member_progress
        self.member_tokens = member_progress is not None and _takes_output_tokens(member_progress)
        self.failures: Dict[int, BaseException] = {
            m: llm.failure for m, llm in enumerate(members) if llm.failure is not None
        }
        self.alive = [m not in self.failures for m in range(len(members))]
        if not any(self.alive):
            raise PoolExhaustedError(self._exhausted(len(inputs)))
        self.rows: List[List[Optional[LLMOutput]]] = [[None] * num_generations for _ in inputs]
        self.load = [0] * len(members)
        self.queues = Queues(strategy, self.members, self.alive, self.load, cooldowns)
        self.pulled = self.queues.pulled
        # Members this call reserved for a suspect: the suspect running there, or None while
        # the member drains the work other calls sent it.
        self.reserved: Dict[int, Optional[Unit]] = {}
        # The deaths, as (member, error), each row was in flight at, and the rows not sent
        # again because of them.
        self.crashes: Dict[int, Set[Tuple[int, BaseException]]] = collections.defaultdict(set)
        self.given_up: Set[int] = set()
        self.in_flight: Dict[Future[Any], Tuple[Unit, int]] = {}
        self.dispatched_at = 0.0  # when `_dispatch` last began
        self.events: queue.SimpleQueue[Optional[Future[Any]]] = queue.SimpleQueue()
        if self.pulled:
            self.queues.shared.extend(balanced_units(len(inputs), num_generations, len(members)))
        else:
            for unit in spread_units(len(inputs), num_generations, len(members), rng):
                unit.origin = unit.member
                self.queues.requeue(unit)

    def run(self) -> List[List[LLMOutput]]:
        self.isolation.listen(self.events)
        try:
            while True:
                self._dispatch()
                if not self.in_flight and not self.queues.waiting():
                    break
                try:
                    event = self.events.get(timeout=self._next_check())
                except queue.Empty:
                    continue
                if self.stopped:
                    raise CancelledError("the caller stopped waiting for this pool call")
                if event is not None:  # None: another call released a member
                    self._collect(event)
        except BaseException as error:
            for future in list(self.in_flight):
                future.cancel()
            if self.closed() and not isinstance(error, KeyboardInterrupt):
                # Members fail because the pool is going away: no failover, one clear error.
                raise RuntimeError(
                    "The LLMPool was torn down before this call finished."
                ) from error
            raise
        finally:
            self.isolation.forget(self.events)
            for member in self.reserved:
                self.isolation.release(member)
            for _, member in self.in_flight.values():  # left behind: no longer this call's
                self.busy.stop(member)
        unfilled = sum(output is None for row in self.rows for output in row)
        if unfilled:  # a broken promise must never pass as `None` outputs
            raise RuntimeError(f"LLMPool left {unfilled} generation(s) unfilled; please report.")
        return self.rows  # type: ignore[return-value]

    def stop(self) -> None:
        """Stops the call (its caller cancelled it): the work in flight is cancelled."""
        self.stopped = True
        self.events.put(None)

    # Handing out work.

    def _dispatch(self) -> None:
        self.dispatched_at = time.monotonic()
        self._place_suspects()
        for member in range(len(self.members)):
            if not self._usable(member) or self.isolation.busy(member):
                continue
            if not self.cooldowns.available(member):
                continue
            while not self.pulled or self.load[member] < _UNITS_IN_FLIGHT:
                unit = self._next_unit(member)
                if unit is None:
                    break
                if not self.isolation.enter(member):  # reserved by another call meanwhile
                    self._put_back(unit)
                    break
                probe = self.cooldowns.admit(member)
                if probe is None:  # another call sent it the probe meanwhile
                    self.isolation.leave(member)
                    self._put_back(unit)
                    break
                self._start(unit, member, probe)
                if probe:
                    break  # one request only until it answers

    def _place_suspects(self) -> None:
        """Runs each suspect row alone on a member: one reserved for it, once drained.

        A reserved member takes no new work from any call on the pool, so that the suspect,
        once started, shares its process with nothing: a death then is the suspect's own.
        """
        if not self.queues.suspects and not self.reserved:
            return  # the usual case: nothing to place
        running = self._rows_in_flight()
        waiting = [m for m, unit in self.reserved.items() if unit is None]
        for unit in list(self.queues.suspects):
            if running[unit.rows[0]]:  # never two runs of a suspect row at once
                continue
            member = next(
                (m for m in waiting if self._ready(m) and self.queues.suits(unit, m)), None
            )
            if member is not None:
                waiting.remove(member)
            else:
                member = self._reserve_for(unit)
            if member is not None and self.isolation.enter_alone(member):
                self.queues.suspects.remove(unit)
                self.reserved[member] = unit
                self._start(unit, member)
                running[unit.rows[0]] += 1
        for member in waiting:  # no suspect needs it any more
            del self.reserved[member]
            self.isolation.release(member)

    def _usable(self, member: int) -> bool:
        """Whether `member` can take work: alive as far as this call knows, and as far as the
        member itself says (it may have died on another call's work, and a request sent to it
        now would fail with that death as if it had caused it)."""
        if self.alive[member]:
            failure = self.members[member].failure
            if failure is not None:
                if self.closed():
                    raise failure  # `run` reports it as the pool's teardown
                self._fail_member(member, failure)
        return self.alive[member]

    def _ready(self, member: int) -> bool:
        """Whether `member` is usable and not cooling down."""
        return self._usable(member) and self.cooldowns.available(member)

    def _reserve_for(self, unit: Unit) -> Optional[int]:
        """Reserves the live member with least in flight that suits `unit`, if one is free."""
        candidates = [
            m
            for m in range(len(self.members))
            if self._ready(m) and m not in self.reserved and self.queues.suits(unit, m)
        ]
        for member in sorted(candidates, key=self.isolation.running):
            if self.isolation.reserve(member):
                self.reserved[member] = None
                return member
        return None

    def _next_unit(self, member: int) -> Optional[Unit]:
        unit = self.queues.take(member)
        if unit is not None or self.fallback:  # no backups: they would spend the reserves
            return unit
        # A member working for another call on this pool is not idle: no backup for it.
        if self.load[member] == 0 and not self.isolation.running(member):
            return self._backup_for(member)
        return None

    def _backup_for(self, member: int) -> Optional[Unit]:
        """An idle member re-runs the oldest unit still running elsewhere; first answer wins.

        This bounds the end of a job by the fastest member, not the slowest. Under "spread" a
        member only backs up its own model's units, so rows keep their mix of models, unless
        the unit has been running for `stall_timeout` seconds. A unit whose rows are also in
        flight in another unit, or were in flight at a member's death, is not backed up: a row
        that crashes its member must not be running in more than two places when it does.
        """
        now = time.monotonic()
        model = self.members[member].model_name_now
        placed = self._rows_in_flight()
        for unit, owner in self.in_flight.values():
            if owner == member or unit.done or unit.backed_up or unit.suspect:
                continue
            if member in unit.avoid:
                continue  # it failed these rows already
            if self.members[owner].failure is not None:
                continue  # its owner died: the crash path decides what becomes of it
            if any(placed[row] > 1 or self.crashes.get(row) for row in unit.rows):
                continue  # never spread a row that may crash its member
            stalled = self.stall_timeout is not None and now - unit.started >= self.stall_timeout
            if self.balanced or stalled or (model is not None and self.queues.model(unit) == model):
                unit.backed_up = True
                return unit
        return None

    def _start(self, unit: Unit, member: int, probe: Optional[bool] = None) -> None:
        """Sends `unit` to `member`, whose slot in `isolation` the caller has entered (and,
        with `probe`, whose probe after a cooldown this is)."""
        if self.given_up.intersection(unit.rows):
            kept = [(r, o) for r, o in zip(unit.rows, unit.offsets) if r not in self.given_up]
            unit.rows, unit.offsets = [r for r, _ in kept], [o for _, o in kept]
            if not unit.rows:
                unit.done = True
                self.isolation.leave(member)
                self.cooldowns.release(member, probe)
                return
        slots = [self.first_slots[row] + offset for row, offset in zip(unit.rows, unit.offsets)]
        unit.started = time.monotonic()  # before sending: the cooldowns date its outcome by it
        try:
            future = self.submit(
                member,
                GenerationRequest(
                    [self.inputs[row] for row in unit.rows],
                    unit.num_generations,
                    self.settings.with_offsets(slots),
                ),
            )
        except BaseException:
            self.isolation.leave(member)
            self.cooldowns.release(member, probe)
            raise
        self.in_flight[future] = (unit, member)
        self.load[member] += 1
        self.busy.start(member)
        # Counted out when the request ends, even if this call has returned by then; its
        # cooldown is settled before this call hears of it, so never sends it more work first.
        future.add_done_callback(lambda _: self.isolation.leave(member))
        future.add_done_callback(partial(self.cooldowns.settle, member, unit.started, probe))
        future.add_done_callback(self.events.put)

    def _put_back(self, unit: Unit) -> None:
        """Returns a unit just taken by `_next_unit` and not started."""
        if any(twin is unit for twin, _ in self.in_flight.values()):
            unit.backed_up = False  # a backup not made
        else:
            self.queues.put_back(unit)

    def _rows_in_flight(self) -> Dict[int, int]:
        """How many units in flight hold each row."""
        return collections.Counter(row for unit, _ in self.in_flight.values() for row in unit.rows)

    def _next_check(self) -> Optional[float]:
        """Seconds until there is something to do that no answer announces (a unit in flight
        counts as stalled, a cooldown ends while work waits); None to wait for an answer."""
        waiting = self.queues.waiting()
        cooldown = self.cooldowns.seconds_to_next(self.dispatched_at) if waiting else None
        waits = [wait for wait in (self._next_stall_check(), cooldown) if wait is not None]
        return max(0.01, min(waits)) if waits else None

    def _next_stall_check(self) -> Optional[float]:
        """Seconds until a unit in flight counts as stalled, when an idle member could then
        back it up; None if none can."""
        if self.pulled or self.stall_timeout is None:
            return None
        idle = any(
            alive
            and self.load[m] == 0
            and not self.isolation.busy(m)
            and not self.isolation.running(m)
            for m, alive in enumerate(self.alive)
        )
        starts = [
            unit.started
            for unit, _ in self.in_flight.values()
            if not (unit.done or unit.backed_up or unit.suspect)
        ]
        if not idle or not starts:
            return None
        return min(starts) + self.stall_timeout - time.monotonic()

    # Gathering results.

    def _collect(self, future: Future[Any]) -> None:
        unit, member = self.in_flight.pop(future)
        self.load[member] -= 1
        self.busy.stop(member)
        if self.reserved.get(member) is unit:
            del self.reserved[member]
            self.isolation.release(member)
        if unit.done:
            return
        if future.cancelled():  # a member torn down at once cancels the work it had queued
            if self.closed():
                raise CancelledError("the pool's teardown cancelled this call's work")
            self.queues.requeue(unit)
            return
        error = future.exception()
        if error is None:
            self._complete(unit, member, future.result())
        elif self.closed():
            raise error  # `run` reports it as the pool's teardown
        elif self._member_lost(member, error):
            loaded = self.members[member].model_name_now is not None
            self._fail_member(member, error)
            if loaded:
                self._crashed(unit, member, error)
            else:  # it never loaded: its units are not to blame
                self.queues.requeue(unit)
        elif _is_crash(error):  # the member died and came back (`max_restarts`)
            self._crashed(unit, member, error)
        else:
            raise error

    def _complete(self, unit: Unit, member: int, rows: List[List[LLMOutput]]) -> None:
        retries = retry_units(unit, rows, member) if transient_error(rows) else []
        if retries and any(twin is unit for twin, _ in self.in_flight.values()):
            unit.avoid.add(member)  # the backup running elsewhere is its re-run
            return
        unit.done = True
        filled = 0
        # Outputs that failed for a transient reason fill their slots too: they stay the
        # row's answer unless a re-run elsewhere succeeds.
        for row, offset, outputs in zip(unit.rows, unit.offsets, rows):
            slots = slice(offset, offset + unit.num_generations)
            filled += sum(output is None for output in self.rows[row][slots])
            self.rows[row][slots] = outputs
        for other, (twin, _) in list(self.in_flight.items()):
            if twin is unit:
                other.cancel()
        for retry in retries:
            if len(retry.avoid) < _MAX_TRANSIENT_TRIES:
                self.queues.requeue(retry)
        self._advance(filled, member, sum(output_tokens(outputs) for outputs in rows))

    def _advance(self, advance: int, member: Optional[int], tokens: int = 0) -> None:
        if self.progress is not None:
            report_progress(self.progress, advance=advance)
        if self.member_progress is not None and member is not None:
            if self.member_tokens:
                report_progress(self.member_progress, member, advance, output_tokens=tokens)
            else:
                report_progress(self.member_progress, member, advance)

    # Failures.

    def _member_lost(self, member: int, error: BaseException) -> bool:
        """Whether `error` means the member can no longer generate (not a bad request)."""
        return isinstance(error, TimeoutError) or self.members[member].failure is not None

    def _crashed(self, unit: Unit, member: int, error: BaseException) -> None:
        """A member died (or timed out) while running `unit`: re-run its rows alone, except
        those in flight at `_MAX_CRASHES_PER_ROW` deaths, which are not sent again."""
        # A suspect runs alone on its member (`_place_suspects`), so its death is its own.
        for row in unit.rows:
            # Every call in flight on a member that died fails with the same error: two units
            # holding one row at that death count once.
            self.crashes[row].add((member, error))
        if any(twin is unit for twin, _ in self.in_flight.values()):
            return  # still running elsewhere: that run decides
        unit.done = True  # replaced by one suspect per row
        for row, offset in zip(unit.rows, unit.offsets):
            if row in self.given_up:
                continue
            if len(self.crashes[row]) >= _MAX_CRASHES_PER_ROW:
                self._give_up(row, member, error)
            else:
                self.queues.suspects.append(
                    Unit([row], [offset], unit.num_generations, origin=unit.origin, suspect=True)
                )

    def _give_up(self, row: int, member: int, error: BaseException) -> None:
        """Fills the row's empty slots with an output that says why it was not sent again."""
        self.given_up.add(row)
        suspects = self.queues.suspects
        self.queues.suspects = collections.deque(u for u in suspects if u.rows != [row])
        model = self.members[member].model_name_now or "unknown model"
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        message = (
            f"this row was in flight on {len(self.crashes[row])} pool members that died "
            f"({reason}), so it is not sent again; it may crash the model (too long for its "
            "memory, or a bug)"
        )
        logger.error("LLMPool: input row %d is not sent again: %s", row, message)
        slots = self.rows[row]
        empty = [k for k, output in enumerate(slots) if output is None]
        for k in empty:
            slots[k] = LLMOutput(
                model_name=model,
                prompt_used=None,
                raw_output=None,
                parsed_output=None,
                error=message,
            )
        self._advance(len(empty), None)

    def _fail_member(self, member: int, error: BaseException) -> None:
        if not self.alive[member]:
            return
        self.alive[member] = False
        self.failures[member] = error
        survivors = sum(self.alive)
        if not survivors and self._rows_left():
            raise PoolExhaustedError(self._exhausted(self._rows_left()))
        logger.warning(
            "LLMPool member #%d failed for good (%s); its unfinished work is re-run on the "
            "%d remaining member(s).",
            member,
            str(error).splitlines()[0] if str(error) else type(error).__name__,
            survivors,
        )
        self.queues.member_lost(member)

    def _rows_left(self) -> int:
        return sum(any(output is None for output in row) for row in self.rows)

    def _exhausted(self, rows_left: int) -> str:
        reasons = "\n".join(f"- member #{m}: {error}" for m, error in self.failures.items())
        return (
            f"Every member of the LLMPool failed, so {rows_left} row(s) cannot be "
            f"generated:\n{reasons}"
        )


def _takes_output_tokens(callback: Callable[..., None]) -> bool:
    try:
        parameters = inspect.signature(callback).parameters
    except (TypeError, ValueError):  # a builtin without a signature
        return False
    return "output_tokens" in parameters or any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()
    )


def _is_crash(error: BaseException) -> bool:
    """Whether `error` says the member's process died while running the call."""
    return isinstance(error, ProcessLLMError) and error.exit_code is not None
