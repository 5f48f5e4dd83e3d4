"""`Isolation`: what each member of one pool has in flight, and which run a suspect row alone.

Shared by every call on the pool, since a process member merges whatever work is queued on it
into one backend call, whichever pool call sent it: a suspect row is alone on its member only
when no call has work there.
"""

from __future__ import annotations

import queue
import threading
from typing import Any, Dict, List, Set

__all__ = ["Isolation"]


class Isolation:
    """The work each member has in flight across the pool's calls, and the members reserved
    for a suspect row.

    A reserved member takes no new work from any call; once its work in flight has drained,
    the call that reserved it runs its suspect there, alone. Each change that may let a call
    go on (a reservation released, a reserved member drained) wakes every listening call.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reserved: Set[int] = set()
        self._running: Dict[int, int] = {}
        self._listeners: List[queue.SimpleQueue[Any]] = []

    def busy(self, member: int) -> bool:
        """Whether `member` is reserved for a suspect row (by any call)."""
        return member in self._reserved

    def running(self, member: int) -> int:
        """How many requests any call has in flight on `member`."""
        return self._running.get(member, 0)

    def enter(self, member: int) -> bool:
        """Counts one more request in flight on `member`; refused while it is reserved."""
        with self._lock:
            if member in self._reserved:
                return False
            self._running[member] = self._running.get(member, 0) + 1
            return True

    def reserve(self, member: int) -> bool:
        """Reserves `member` for a suspect row: no call sends it new work until released."""
        with self._lock:
            if member in self._reserved:
                return False
            self._reserved.add(member)
            return True

    def enter_alone(self, member: int) -> bool:
        """Counts the suspect row's request on the reserved `member`, once nothing else is
        in flight there; False while other work drains."""
        with self._lock:
            if self._running.get(member, 0):
                return False
            self._running[member] = 1
            return True

    def leave(self, member: int) -> None:
        """One request on `member` is over; a reserved member that drained wakes the calls."""
        with self._lock:
            self._running[member] -= 1
            drained = member in self._reserved and not self._running[member]
        if drained:
            self.wake()

    def release(self, member: int) -> None:
        """Ends the reservation of `member`, waking every call: one may be waiting for it."""
        with self._lock:
            self._reserved.discard(member)
        self.wake()

    def listen(self, listener: queue.SimpleQueue[Any]) -> None:
        with self._lock:
            self._listeners.append(listener)

    def forget(self, listener: queue.SimpleQueue[Any]) -> None:
        with self._lock:
            self._listeners.remove(listener)

    def wake(self) -> None:
        """Wakes every listening call: something that may let one go on has changed (also
        elsewhere: a member's cooldown)."""
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            listener.put(None)
