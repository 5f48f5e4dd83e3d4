"""Shared benchmark helpers: repeated timing summarised as median/min/max, and rich tables."""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, List, Optional, Sequence, Tuple

from rich.console import Console
from rich.table import Table

__all__ = ["Stats", "measure", "parse_quick", "print_table", "run_script"]


@dataclass(frozen=True)
class Stats:
    """The median, fastest and slowest of repeated measurements, in seconds, and the runs."""

    median: float
    min: float
    max: float
    samples: Tuple[float, ...] = field(default=(), compare=False)

    @classmethod
    def of(cls, samples: Iterable[float]) -> Stats:
        """Summarises samples a benchmark timed itself (when only part of a run counts)."""
        values = list(samples)
        if not values:
            raise ValueError("Stats.of needs at least one sample.")
        return cls(statistics.median(values), min(values), max(values), tuple(values))


def measure(fn: Callable[[], Any], repeat: int) -> Stats:
    """Calls `fn` `repeat` times and summarises the wall time of each call.

    Args:
        fn: the work to time, with everything it needs already built.
        repeat: how many timed calls; the median resists a slow outlier.
    """
    if repeat < 1:
        raise ValueError(f"`repeat` must be at least 1, not {repeat!r}.")
    samples: List[float] = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return Stats.of(samples)


def print_table(
    title: str,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    caption: Optional[str] = None,
    console: Optional[Console] = None,
) -> None:
    """Prints `rows` under `columns` as a rich table; cells are shown with `str`.

    The first column (what was varied) is left-aligned, the figures right-aligned. `caption`
    goes under the table: targets, machine, notes.
    """
    table = Table(title=title, caption=caption, caption_justify="left")
    for index, column in enumerate(columns):
        table.add_column(column, justify="left" if index == 0 else "right")
    for row in rows:
        table.add_row(*(str(cell) for cell in row))
    if console is None:
        console = Console()
        if not console.is_terminal:  # a log or a pipe: no reason to squeeze to 80 columns
            console = Console(width=140)
    console.print(table)


def run_script(
    doc: str,
    run: Callable[[bool], List[Any]],
    print_results: Callable[[List[Any]], None],
    argv: Optional[Sequence[str]] = None,
) -> int:
    """A benchmark script's `main`: parses `--quick`, runs, prints the table; returns 0.

    Args:
        doc: the script's docstring; its first line describes it in `--help`.
        run: the script's `run(quick)`.
        print_results: prints what `run` returned.
        argv: the command line, `sys.argv[1:]` if None.
    """
    print_results(run(parse_quick(doc.splitlines()[0], argv)))
    return 0


def parse_quick(description: str, argv: Optional[Sequence[str]] = None) -> bool:
    """Parses a benchmark script's command line; returns whether `--quick` was given."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--quick", action="store_true", help="fewer sizes and repeats, for a fast check"
    )
    return parser.parse_args(argv).quick
