"""`BusyClock`: how long each member of one pool has had work in flight, shared by its calls."""

from __future__ import annotations

import threading
import time
from typing import List

__all__ = ["BusyClock"]


class BusyClock:
    """Seconds each member had at least one unit in flight, counted once however many of the
    pool's concurrent calls kept it busy: what a job's summary sets against its wall time.

    Args:
        members: how many members the pool has.
    """

    def __init__(self, members: int) -> None:
        self._lock = threading.Lock()
        self._running = [0] * members
        self._since = [0.0] * members
        self._busy = [0.0] * members

    def start(self, member: int) -> None:
        with self._lock:
            if self._running[member] == 0:
                self._since[member] = time.monotonic()
            self._running[member] += 1

    def stop(self, member: int) -> None:
        with self._lock:
            self._running[member] -= 1
            if self._running[member] == 0:
                self._busy[member] += time.monotonic() - self._since[member]

    def seconds(self) -> List[float]:
        """Each member's busy seconds so far, the unit running now included."""
        now = time.monotonic()
        with self._lock:
            return [
                busy + (now - since if running else 0.0)
                for busy, since, running in zip(self._busy, self._since, self._running)
            ]
