"""Start-up of a pool: from `LLMPool.from_replicas(...)` to its first result.

Two replicas, each in its own child process (a fresh interpreter), load a no-op `FakeLLM` or
the kit's tiny transformers llama; the figure runs from the `from_replicas` call to the first
generated row. The reference is two plain Python processes launched side by side doing the same
with the raw library (bare interpreters for the no-op model; `transformers` loading the tiny
llama and generating one row), timed from their launch to the first result: the ratio is what
the pool adds to loading the model itself. Legacy distilabel 0.6.0's figure (no-op model only: its
venv has no torch) is the time its two `ProcessLLM`s, forked, take to return a first result.

Pool and plain runs alternate; the ratio is taken run by run.

Run: `python -m benchmarks.startup [--quick]` or `python benchmarks/startup.py [--quick]`.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: import from the repository, not benchmarks/
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from typing import Any, Dict, List, Optional

from benchmarks._legacy import run_legacy
from benchmarks._lifecycle import lifecycles
from benchmarks._summary import COLUMNS, cells, judge, skipped_row, summary_row
from benchmarks._table import print_table, run_script
from benchmarks._tiny import missing_transformers

__all__ = ["main", "run", "runs_for"]

TARGET_S = 1.0  # issue 3: the child ready for a no-op model within 1 s


def runs_for(model: str, quick: bool) -> int:
    """Lifecycles per model; shared with `benchmarks.memory`, which reads the same runs."""
    if model == "fake":
        return 3 if quick else 5
    return 1 if quick else 3  # a tiny-llama lifecycle takes 10+ s on 2 busy cores


def _legacy_startup_s(runs: int) -> Optional[float]:
    result = run_legacy(
        "pool_replicas",
        timeout_s=60 + 20 * runs,
        members=2,
        inputs=2,
        latency_per_generation=0.001,
        num_generations=1,
        repeats=runs,
    )
    return None if result is None else result["median"]["startup_s"]


def run(quick: bool = False) -> List[Dict[str, Any]]:
    """Times pool start-up for each model; returns summary rows (seconds)."""
    results: List[Dict[str, Any]] = []
    for model, label in (("fake", "no-op FakeLLM"), ("tiny", "tiny transformers llama")):
        workload = f"2-replica pool start-up to first result, {label}"
        if model == "tiny" and missing_transformers():
            results.append(skipped_row("startup", missing_transformers(), workload))
            continue
        runs = runs_for(model, quick)
        pools, plains = lifecycles(model, runs)
        results.append(
            summary_row(
                "startup",
                workload,
                "s",
                [pool["startup_s"] for pool in pools],
                reference=[plain["first_result_s"] for plain in plains],
                reference_kind="2 plain processes" if model == "tiny" else "2 bare interpreters",
                legacy=_legacy_startup_s(runs) if model == "fake" else None,
                target=f"< {TARGET_S:g} s" if model == "fake" else None,
                note="legacy forks; ours starts fresh interpreters" if model == "fake" else None,
            )
        )
        if model == "fake":
            judge(results[-1], "<", TARGET_S, on="ours")
    return results


def print_results(rows: List[Dict[str, Any]]) -> None:
    print_table("Pool start-up", COLUMNS, [cells(row) for row in rows])


def main(argv: Optional[List[str]] = None) -> int:
    return run_script(__doc__, run, print_results, argv)


if __name__ == "__main__":
    raise SystemExit(main())
