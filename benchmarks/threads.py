"""Threaded generation: 256 requests of 50 ms over 1 to 64 threads, against the ideal.

A `FakeLLM` sleeps `latency` per `_generate` call; with `num_threads=N`, `LLM.generate` makes
one call per request on N threads, so M requests ideally take `ceil(M / N) * latency`. The
wall time runs from `generate` to its Future's result, thread start-up included, on a fresh
LLM each run. Target: within 10% of the ideal. For context, the bare pool column times a
`ThreadPoolExecutor` running the same sleeps, with no LLM around them.

When legacy distilabel 0.6.0 is installed in its own venv (see `benchmarks/_legacy.py`), the
same workload runs through its `LLM(num_threads=N)` for comparison.

Run: `python -m benchmarks.threads [--quick]` or `python benchmarks/threads.py [--quick]`.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: import from the repository, not benchmarks/
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import math
import time
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any, Dict, List, Optional

from benchmarks._legacy import run_legacy
from benchmarks._table import Stats, print_table, run_script
from distilabel_llm.tasks import TextGenerationTask
from distilabel_llm.testing import FakeLLM

__all__ = ["main", "run"]

REQUESTS, LATENCY_S = 256, 0.05
THREADS = (1, 2, 4, 8, 16, 32, 64)
QUICK_THREADS = (16, 64)  # 8 threads take 1.6 s a run, three times on each side
TARGET_RATIO = 1.10


def _ideal_s(num_threads: int, requests: int = REQUESTS, latency: float = LATENCY_S) -> float:
    return math.ceil(requests / num_threads) * latency


def _repeats(num_threads: int) -> int:
    # Runs with 1 or 2 threads last 6 to 13 s and average 128+ sequential calls each already.
    return 1 if num_threads <= 2 else 3


def _time_once(num_threads: int, requests: int = REQUESTS, latency: float = LATENCY_S) -> float:
    """Seconds for `requests` single-row calls on a fresh `FakeLLM(num_threads=...)`."""
    inputs = [{"input": f"request {i}"} for i in range(requests)]
    llm = FakeLLM(TextGenerationTask(), latency=latency, num_threads=num_threads)
    try:
        start = time.perf_counter()
        rows = llm.generate(inputs).result(timeout=10 * _ideal_s(num_threads) + 60)
        wall = time.perf_counter() - start
    finally:
        llm.close()
    if len(rows) != requests or rows[-1][0]["raw_output"] != f"fake #0: request {requests - 1}":
        raise RuntimeError(f"threaded generation with {num_threads} threads returned bad rows")
    return wall


def _time_floor(num_threads: int, requests: int = REQUESTS, latency: float = LATENCY_S) -> float:
    """Seconds for the bare thread pool to run `requests` sleeps: no LLM, no futures combined."""
    with ThreadPoolExecutor(max_workers=num_threads) as pool:
        start = time.perf_counter()
        wait([pool.submit(time.sleep, latency) for _ in range(requests)])
        return time.perf_counter() - start


def _legacy(num_threads: int, repeats: int) -> Optional[Dict[str, Any]]:
    ideal = _ideal_s(num_threads)
    return run_legacy(
        "threads",
        timeout_s=repeats * (2 * ideal + 10) + 60,
        threads=num_threads,
        requests=REQUESTS,
        latency=LATENCY_S,
        repeats=repeats,
    )


def run(quick: bool = False) -> List[Dict[str, Any]]:
    """Times each thread count; returns one dict per count (seconds, medians unless named)."""
    rows: List[Dict[str, Any]] = []
    for num_threads in QUICK_THREADS if quick else THREADS:
        repeats = _repeats(num_threads)
        ideal = _ideal_s(num_threads)
        wall = Stats.of(_time_once(num_threads) for _ in range(repeats))
        floor = Stats.of(_time_floor(num_threads) for _ in range(repeats))
        legacy = _legacy(num_threads, repeats)
        rows.append(
            {
                "benchmark": "threads",
                "threads": num_threads,
                "requests": REQUESTS,
                "latency_s": LATENCY_S,
                "repeat": repeats,
                "ideal_s": ideal,
                "wall_s": wall.median,
                "wall_s_min": wall.min,
                "wall_s_max": wall.max,
                "ratio": wall.median / ideal,
                "floor_wall_s": floor.median,
                "floor_ratio": floor.median / ideal,
                "legacy_wall_s": None if legacy is None else legacy["median"]["wall_s"],
                "legacy_ratio": None if legacy is None else legacy["median"]["ratio"],
            }
        )
    return rows


def print_results(rows: List[Dict[str, Any]]) -> None:
    """Prints `run`'s results as a table, with the target verdict in the caption."""
    missed = [row["threads"] for row in rows if row["ratio"] > TARGET_RATIO]
    verdict = "met at every thread count" if not missed else f"MISSED with {missed} threads"
    print_table(
        f"LLM(num_threads=N): {REQUESTS} requests of {1e3 * LATENCY_S:.0f} ms each",
        [
            "threads",
            "runs",
            "ideal s",
            "wall s",
            "wall min..max",
            "wall / ideal",
            "bare pool / ideal",
            "legacy 0.6.0 wall s",
            "legacy / ideal",
        ],
        [
            [
                row["threads"],
                row["repeat"],
                f"{row['ideal_s']:.2f}",
                f"{row['wall_s']:.3f}",
                f"{row['wall_s_min']:.3f}..{row['wall_s_max']:.3f}",
                f"{row['ratio']:.3f}",
                f"{row['floor_ratio']:.3f}",
                "—" if row["legacy_wall_s"] is None else f"{row['legacy_wall_s']:.3f}",
                "—" if row["legacy_ratio"] is None else f"{row['legacy_ratio']:.3f}",
            ]
            for row in rows
        ],
        caption=(
            f"Ideal = ceil({REQUESTS} / threads) x {LATENCY_S:g} s; wall is the median of the "
            f"runs. Bare pool: a ThreadPoolExecutor running the same sleeps, the floor for any "
            f"threaded LLM. Target: within {100 * (TARGET_RATIO - 1):.0f}% of the ideal: "
            f"{verdict}."
        ),
    )


def main(argv: Optional[List[str]] = None) -> int:
    return run_script(__doc__, run, print_results, argv)


if __name__ == "__main__":
    raise SystemExit(main())
