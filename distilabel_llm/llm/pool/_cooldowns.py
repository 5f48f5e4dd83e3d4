"""`Cooldowns`: which members of one pool rest after failing for a transient reason.

An API member absorbs a failed request into its outputs (`error` set, `raw_output` None) and
marks it `transient` when the failure may pass: a rate limit still refused after the client's
own retries, a server error, a timeout, a lost connection. A member that answers so is likely
to answer the next request the same way, so it is cooled down: no call on the pool sends it new
work until the cooldown ends; then one request probes it. A probe that succeeds brings it back;
one that fails cools it down again for twice as long, up to a cap.

Shared by every call on the pool, as `Isolation` is, since they all send work to the same
members: what one call learns about a member holds for the others.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Callable, List, Optional, Sequence

__all__ = ["Cooldowns", "transient_error"]

logger = logging.getLogger("distilabel_llm")


@dataclass
class _Member:
    failures: int = 0  # transient failures in a row, reset by a success
    since: float = -math.inf  # when the latest cooldown began
    until: float = 0.0  # when it ends
    probing: bool = False  # the one request sent since it ended is in flight


def transient_error(rows: Sequence[Sequence[Any]]) -> Optional[str]:
    """The `error` of the first output in `rows` marked `transient`, or None if none is."""
    for outputs in rows:
        for output in outputs:
            if isinstance(output, dict) and output.get("transient"):
                return str(output.get("error") or "a transient failure")
    return None


class Cooldowns:
    """The cooldown of each member of a pool, across its calls.

    A request's outcome counts only if it was sent after the member's latest cooldown began:
    the requests in flight when the first failure came in say nothing new, whichever way they
    end, so a burst of them neither lengthens the cooldown nor cuts it short.

    Args:
        members: how many members the pool has.
        seconds: the first cooldown; each transient failure in a row doubles it. 0 never cools
            a member down (its failed rows are still re-run on the others).
        max_seconds: the longest cooldown.
        wake: called when a member may take work again, or another member's cooldown began
            (a call waiting for a cooldown to end then reconsiders).
    """

    def __init__(
        self,
        members: int,
        seconds: float,
        max_seconds: float,
        wake: Callable[[], None],
    ) -> None:
        self.seconds = seconds
        self.max_seconds = max(seconds, max_seconds)
        self._wake = wake
        self._lock = threading.Lock()
        self._members: List[_Member] = [_Member() for _ in range(members)]

    def available(self, member: int) -> bool:
        """Whether `member` may take new work now: not cooling down, and not being probed."""
        state = self._members[member]
        return not state.probing and state.until <= time.monotonic()

    def cooling(self, member: int) -> bool:
        """Whether `member` is cooling down, or a probe of it is still in flight."""
        return not self.available(member)

    def admit(self, member: int) -> Optional[bool]:
        """Takes one request for `member`: None while refused; True when the request is the
        probe that follows a cooldown (`settle` must then be told how it ended)."""
        with self._lock:
            state = self._members[member]
            if state.probing or state.until > time.monotonic():
                return None
            state.probing = state.failures > 0
            return state.probing

    def release(self, member: int, probe: Optional[bool]) -> None:
        """Gives back a request admitted but not sent."""
        if probe:
            with self._lock:
                self._members[member].probing = False
            self._wake()

    def seconds_to_next(self, after: float) -> Optional[float]:
        """Seconds until the earliest cooldown that was still running at `after` ends (0 if
        it has ended since); None if none was. A call that last handed out work at `after`
        has seen every cooldown that had ended by then."""
        now = time.monotonic()
        ends = [state.until - now for state in self._members if state.until > after]
        return max(0.0, min(ends)) if ends else None

    def settle(self, member: int, sent_at: float, probe: Optional[bool], future: Future) -> None:
        """Records how a request sent to `member` at `sent_at` ended (a done-callback).

        Outputs marked `transient` cool the member down; others end its cooldowns. A request
        cancelled or raising says nothing about the member's API: a dead member is the
        failover's, not the cooldown's.
        """
        error = None
        if not future.cancelled() and future.exception() is None:
            error = transient_error(future.result())
            ok = error is None
        else:
            ok = None
        with self._lock:
            state = self._members[member]
            changed = bool(probe)
            if probe:
                state.probing = False
            if ok is not None and sent_at >= state.since:
                changed = self._record(member, state, error) or changed
        if changed:
            self._wake()

    def _record(self, member: int, state: _Member, error: Optional[str]) -> bool:
        """Counts one outcome of `member` (under the lock); returns whether its state changed."""
        if error is None:
            if not state.failures:
                return False
            state.failures, state.until = 0, 0.0
            logger.info("LLMPool member #%d answers again: it takes new work.", member)
            return True
        if self.seconds <= 0:
            return False
        state.failures += 1
        rest = min(self.max_seconds, self.seconds * 2 ** (state.failures - 1))
        state.since = time.monotonic()
        state.until = state.since + rest
        logger.warning(
            "LLMPool member #%d failed for a transient reason (%s); it gets no new work for "
            "%.3g s, and its failed rows go to the other members.",
            member,
            error.strip().splitlines()[0] if error.strip() else "no reason given",
            rest,
        )
        return True
