"""Helpers for tests that start processes: find a process's children."""

from __future__ import annotations

from pathlib import Path
from typing import List


def children_of(pid: int) -> List[int]:
    """Live (not zombie) children of `pid`, read from /proc."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found
