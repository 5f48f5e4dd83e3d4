"""`Isolation`: the members of one pool that run a suspect row alone, shared by its calls."""

from __future__ import annotations

import queue
import threading
from typing import Any, List, Set

__all__ = ["Isolation"]


class Isolation:
    """The members running a suspect row alone, shared by every call on one pool.

    Calls skip these members; releasing one wakes every call, since one may be waiting for it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: Set[int] = set()
        self._listeners: List[queue.SimpleQueue[Any]] = []

    def busy(self, member: int) -> bool:
        return member in self._held

    def hold(self, member: int) -> bool:
        with self._lock:
            if member in self._held:
                return False
            self._held.add(member)
            return True

    def release(self, member: int) -> None:
        with self._lock:
            self._held.discard(member)
            listeners = list(self._listeners)
        for listener in listeners:
            listener.put(None)

    def listen(self, listener: queue.SimpleQueue[Any]) -> None:
        with self._lock:
            self._listeners.append(listener)

    def forget(self, listener: queue.SimpleQueue[Any]) -> None:
        with self._lock:
            self._listeners.remove(listener)
