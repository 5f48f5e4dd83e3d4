"""`Turns`: first come, first served among the concurrent calls on one pool."""

from __future__ import annotations

import queue
import threading
from typing import Any, Callable, Dict, List

__all__ = ["Turns"]


class Turns:
    """The order in which one pool's concurrent calls hand units to its members: the oldest
    call with units waiting goes first, and the others wait their turn.

    Were every call to keep its own units queued on every member, the members' queues would
    interleave the calls, and calls started together would all end together, at the end: a
    job that keeps four batches in a pool would get its first batch back after four batches'
    time, and its other model would wait for it. Served in order, the oldest call ends first
    and the next ones' units keep the members busy meanwhile.

    Calls that could not take a member are woken (a `None` on their event queue) whenever one
    may have become free for them.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # Insertion order is arrival order: each call's events and whether it has units waiting.
        self._calls: Dict[queue.SimpleQueue[Any], Callable[[], bool]] = {}

    def join(self, events: queue.SimpleQueue[Any], waiting: Callable[[], bool]) -> None:
        """Adds a call, last in line; `waiting()` says whether it has units left to hand out."""
        with self._lock:
            self._calls[events] = waiting

    def leave(self, events: queue.SimpleQueue[Any]) -> None:
        with self._lock:
            del self._calls[events]
        self.wake_others(events)  # its units left behind no longer hold members

    def mine(self, events: queue.SimpleQueue[Any]) -> bool:
        """Whether no call older than this one has units waiting."""
        with self._lock:
            for other, waiting in self._calls.items():
                if other is events:
                    return True
                if waiting():
                    return False
        return True

    def wake_others(self, events: queue.SimpleQueue[Any]) -> None:
        """Tells the other calls with units waiting that a member may be free for them."""
        with self._lock:
            others: List[queue.SimpleQueue[Any]] = [
                other for other, waiting in self._calls.items() if other is not events and waiting()
            ]
        for other in others:
            other.put(None)
