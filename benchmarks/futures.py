"""Combining many futures with `when_all_complete`, against legacy distilabel's algorithm.

For each size, n pending futures are created, combined, then resolved in order (as a thread
pool would finish them) in this thread. Reported: the `when_all_complete` call itself, the
time from the first `set_result` to the combined result, and their sum. Target: 20,000 futures
in under 50 ms in total.

For context, the floor is what the standard library alone costs for the same futures: one
no-op done callback added to each, then each resolved. `when_all_complete` cannot go below it.

The baseline is legacy distilabel 0.6.0's `when_all_complete`, reproduced here: every
completion runs `futures.index(future)` and `concurrent.futures.wait(futures)`, so it costs
O(n) per completion and O(n^2) overall, so it is timed at 1,000 futures only.

Run: `python -m benchmarks.futures [--quick]` or `python benchmarks/futures.py [--quick]`.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: import from the repository, not benchmarks/
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import time
from concurrent.futures import Future, wait
from typing import Any, Callable, Dict, List, Optional

from benchmarks._summary import judge
from benchmarks._table import Stats, print_table, run_script
from distilabel_llm.utils.future_tools import when_all_complete

__all__ = ["judge_total", "main", "run"]

SIZES = (1_000, 5_000, 10_000, 20_000)
TARGET_SIZE, TARGET_MS = 20_000, 50.0

Combiner = Callable[[List["Future[Any]"]], "Future[Any]"]


def _legacy_when_all_complete(futures: List[Future[Any]]) -> Future[Any]:
    """Legacy distilabel 0.6.0's algorithm: an index lookup and a `wait` on all per completion."""
    combined: Future[Any] = Future()
    results: List[Any] = [None] * len(futures)

    def check_all_done(future: Future[Any]) -> None:
        results[futures.index(future)] = future.result()
        _, not_done = wait(futures, return_when="FIRST_COMPLETED")
        if not not_done:
            combined.set_result(results)

    for future in futures:
        future.add_done_callback(check_all_done)
    return combined


def _floor(futures: List[Future[Any]]) -> Future[Any]:
    """No combining at all: a no-op callback per future, and an already resolved result."""
    for future in futures:
        future.add_done_callback(_no_op)
    done: Future[Any] = Future()
    done.set_result(list(range(len(futures))))
    return done


def _no_op(future: Future[Any]) -> None:
    pass


def _time_once(combine: Combiner, n: int) -> tuple[float, float]:
    """Seconds spent combining n fresh futures, and from the first result to the combined one."""
    futures: List[Future[Any]] = [Future() for _ in range(n)]
    start = time.perf_counter()
    combined = combine(futures)
    combined_at = time.perf_counter()
    for i, future in enumerate(futures):
        future.set_result(i)
    results = combined.result(timeout=600)
    done_at = time.perf_counter()
    if len(results) != n or results[-1] != n - 1:
        raise RuntimeError(f"combining {n} futures gave a wrong result")
    return combined_at - start, done_at - combined_at


def _stats(combine: Combiner, n: int, repeat: int) -> tuple[Stats, Stats, Stats]:
    samples = [_time_once(combine, n) for _ in range(repeat)]
    return (
        Stats.of(combine_s for combine_s, _ in samples),
        Stats.of(resolve_s for _, resolve_s in samples),
        Stats.of(combine_s + resolve_s for combine_s, resolve_s in samples),
    )


def run(quick: bool = False) -> List[Dict[str, Any]]:
    """Times every size; returns one dict per size (times in milliseconds, medians unless named).

    The legacy baseline runs at 1,000 futures only: at 5,000 it already takes seconds.
    """
    repeat = 3 if quick else 7
    legacy_sizes = (1_000,)
    _time_once(when_all_complete, 1_000)  # warm up imports and allocator
    rows: List[Dict[str, Any]] = []
    for n in SIZES:
        combine, resolve, total = _stats(when_all_complete, n, repeat)
        floor = _stats(_floor, n, repeat)[2]
        legacy: Optional[Stats] = None
        if n in legacy_sizes:
            legacy = _stats(_legacy_when_all_complete, n, repeat)[2]
        rows.append(
            {
                "benchmark": "futures",
                "futures": n,
                "repeat": repeat,
                "combine_ms": 1e3 * combine.median,
                "resolve_ms": 1e3 * resolve.median,
                "total_ms": 1e3 * total.median,
                "total_ms_min": 1e3 * total.min,
                "total_ms_max": 1e3 * total.max,
                "total_ms_samples": [1e3 * value for value in total.samples],
                "floor_total_ms_samples": [1e3 * value for value in floor.samples],
                "per_future_us": 1e6 * total.median / n,
                "floor_total_ms": 1e3 * floor.median,
                "legacy_total_ms": None if legacy is None else 1e3 * legacy.median,
                "speedup_vs_legacy": None if legacy is None else legacy.median / total.median,
            }
        )
    return rows


def judge_total(row: Dict[str, Any]) -> str:
    """The target's verdict on `row`'s per-run totals (combine + resolve), as the target says."""
    samples = row.get("total_ms_samples") or [row["total_ms"]]
    return judge({"samples": samples, "ours": row["total_ms"]}, "<", TARGET_MS, on="ours")[
        "verdict"
    ]


def print_results(rows: List[Dict[str, Any]]) -> None:
    """Prints `run`'s results as a table, with the target verdict in the caption."""
    target = next(row for row in rows if row["futures"] == TARGET_SIZE)
    verdict = judge_total(target)
    print_table(
        "when_all_complete: combine n pending futures, resolve them all",
        [
            "futures",
            "combine ms",
            "1st result -> combined ms",
            "total ms",
            "total min..max",
            "µs/future",
            "stdlib floor ms",
            "legacy 0.6.0 ms",
            "vs legacy",
        ],
        [
            [
                f"{row['futures']:,}",
                f"{row['combine_ms']:.2f}",
                f"{row['resolve_ms']:.2f}",
                f"{row['total_ms']:.2f}",
                f"{row['total_ms_min']:.1f}..{row['total_ms_max']:.1f}",
                f"{row['per_future_us']:.2f}",
                f"{row['floor_total_ms']:.2f}",
                "—" if row["legacy_total_ms"] is None else f"{row['legacy_total_ms']:,.1f}",
                "—" if row["speedup_vs_legacy"] is None else f"{row['speedup_vs_legacy']:,.0f}x",
            ]
            for row in rows
        ],
        caption=(
            f"Medians of {rows[0]['repeat']} runs. Target: {TARGET_SIZE:,} futures from the "
            f"combine call to the combined result in under {TARGET_MS:.0f} ms in total: {verdict} "
            f"({target['total_ms']:.1f} ms, of which {target['resolve_ms']:.1f} ms from the "
            "first result; judged on the runs' upper quartile), against a standard-library "
            "floor of "
            f"{target['floor_total_ms']:.1f} ms). Legacy 0.6.0's algorithm is O(n^2), "
            "so it is timed at 1,000 futures only (5,000 take it seconds)."
        ),
    )


def main(argv: Optional[List[str]] = None) -> int:
    return run_script(__doc__, run, print_results, argv)


if __name__ == "__main__":
    raise SystemExit(main())
