"""`Queues`: where the units of one `LLMPool` call wait, and which member may take which.

Under "balance" and "fallback" units wait in one shared queue: under "balance" any member
takes the next, under "fallback" only the first member, in the pool's order, that is alive and
not cooling down. Under "spread" each unit waits in its member's own queue: it is that
member's share of its rows. Suspect rows (after a member died) wait apart, to run alone.

A unit re-running rows that failed for a transient reason (`Unit.avoid` names where) goes to
a member not tried for them: any under "balance" and "fallback", one of the same model under
"spread" (a row's share of generations is its model's). With none left, it is dropped and its
rows keep the error they came back with.
"""

from __future__ import annotations

import collections
from typing import Deque, List, Optional, Sequence

from distilabel_llm.llm.core.contract import BaseLLM
from distilabel_llm.llm.pool._cooldowns import Cooldowns
from distilabel_llm.llm.pool._units import PoolStrategy, Unit

__all__ = ["Queues"]


class Queues:
    """The units of one pool call waiting for a member.

    Args:
        strategy: the pool's strategy.
        members: the pool's members (their models tell which may run whose share).
        alive: the call's view of which members are alive (its own list, kept up to date).
        load: the call's units in flight on each member (its own list).
        cooldowns: the pool's cooldowns.
    """

    def __init__(
        self,
        strategy: PoolStrategy,
        members: Sequence[BaseLLM],
        alive: List[bool],
        load: List[int],
        cooldowns: Cooldowns,
    ) -> None:
        self.pulled = strategy != "spread"  # units wait in `shared` for a member to take them
        self.fallback = strategy == "fallback"
        self.members = members
        self.alive = alive
        self.load = load
        self.cooldowns = cooldowns
        self.shared: Deque[Unit] = collections.deque()
        self.own: List[Deque[Unit]] = [collections.deque() for _ in members]
        self.suspects: Deque[Unit] = collections.deque()

    def waiting(self) -> bool:
        """Whether any unit waits."""
        return bool(self.shared or self.suspects or any(self.own))

    def take(self, member: int) -> Optional[Unit]:
        """The next unit for `member`: its own first, then the first shared one it may run
        (not failed there; under "fallback", no member before it ready to take it)."""
        if self.own[member]:
            return self.own[member].popleft()
        for index, unit in enumerate(self.shared):
            if member in unit.avoid or (self.fallback and self.first_choice(unit) != member):
                continue
            del self.shared[index]
            return unit
        return None

    def first_choice(self, unit: Unit) -> Optional[int]:
        """Under "fallback", the member `unit` goes to: the first, in the pool's order, that is
        alive, not cooling down and not tried for it."""
        return next(
            (
                m
                for m, alive in enumerate(self.alive)
                if alive and m not in unit.avoid and self.cooldowns.available(m)
            ),
            None,
        )

    def put_back(self, unit: Unit) -> None:
        """Returns a unit just taken and not started, to the head of its queue."""
        if self.pulled:
            self.shared.appendleft(unit)
        else:
            self.own[unit.member].appendleft(unit)  # type: ignore[index]

    def requeue(self, unit: Unit) -> None:
        """Queues `unit` again (or for the first time): for any member, or under "spread" for
        its member, or a live member of its model if its own is gone."""
        if unit.done:
            return
        if unit.avoid and not self.retry_targets(unit):
            unit.done = True  # no member left to try: its rows keep their error
            return
        unit.backed_up = False
        if unit.suspect:
            self.suspects.appendleft(unit)
        elif self.pulled:
            self.shared.appendleft(unit)
        else:
            unit.member = self._spread_target(unit)
            self.own[unit.member].append(unit)

    def member_lost(self, member: int) -> None:
        """Requeues the units waiting for `member`, which the call has just marked dead, and
        drops the re-runs no live member may take any more."""
        units = list(self.own[member])
        self.own[member].clear()
        for unit in units:
            self.requeue(unit)
        for unit in [u for u in self.shared if u.avoid and not self.retry_targets(u)]:
            self.shared.remove(unit)  # its rows keep their error

    def retry_targets(self, unit: Unit) -> List[int]:
        """The live members that may re-run `unit`'s transient failures: those not tried for
        it, under "spread" of its model only."""
        model = None if self.pulled else self.model(unit)
        return [
            m
            for m, alive in enumerate(self.alive)
            if alive
            and m not in unit.avoid
            and (model is None or self.members[m].model_name_now == model)
        ]

    def suits(self, unit: Unit, member: int) -> bool:
        """Under "spread", a suspect goes to a member of its model while one is alive."""
        model = self.model(unit)
        if self.pulled or model is None or self.members[member].model_name_now == model:
            return True
        return not any(
            alive and self.members[m].model_name_now == model for m, alive in enumerate(self.alive)
        )

    def model(self, unit: Unit) -> Optional[str]:
        """The model whose share `unit` is, under "spread", once known."""
        return None if unit.origin is None else self.members[unit.origin].model_name_now

    def _spread_target(self, unit: Unit) -> int:
        """Under "spread", the member to run `unit`: its own while alive; else a live member of
        its model (any, if none is left) not tried for it, with least work, not cooling down
        if it can."""
        if unit.member is not None and self.alive[unit.member]:
            return unit.member
        live = [m for m, alive in enumerate(self.alive) if alive]
        model = self.model(unit)
        same = [m for m in live if model and self.members[m].model_name_now == model] or live
        untried = [m for m in same if m not in unit.avoid] or same
        return min(
            untried,
            key=lambda m: (self.cooldowns.cooling(m), len(self.own[m]), self.load[m]),
        )
