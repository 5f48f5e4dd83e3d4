"""Peak resident memory of a pool's parent and children, against plain processes.

A 2-replica `LLMPool` (one child process each) loads the no-op `FakeLLM` or the kit's tiny
transformers llama and runs a batch of 16 rows; the peaks (VmHWM) are read from `/proc` before
teardown: each child's, and the parent's growth over its resident size before the pool (its peak
is reset first through `/proc/self/clear_refs`, so what ran before in the same process does not
count; where the kernel refuses the reset, the row says so and gives no figure). The reference
for a child is a plain Python process that loads the same model with the raw library and runs
the same batch (for the no-op model, a bare interpreter): the ratio is the memory the library
adds in each child. `resource.getrusage(RUSAGE_CHILDREN)` agrees with `/proc` for the largest
child; it is kept in the JSON as a cross-check.

The runs are the start-up benchmark's (`benchmarks/_lifecycle.py`): one set of pool lifecycles
gives both figures. Legacy distilabel 0.6.0 is not compared (its venv has no torch, and its
no-op children are forks that share the parent's pages).

Run: `python -m benchmarks.memory [--quick]` or `python benchmarks/memory.py [--quick]`.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: import from the repository, not benchmarks/
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import resource
from typing import Any, Dict, List, Optional

from benchmarks._lifecycle import BATCH_ROWS, lifecycles
from benchmarks._summary import COLUMNS, cells, skipped_row, summary_row
from benchmarks._table import print_table, run_script
from benchmarks._tiny import missing_transformers
from benchmarks.startup import runs_for

__all__ = ["main", "run"]


def run(quick: bool = False) -> List[Dict[str, Any]]:
    """Weighs the pool for each model; returns summary rows (MB)."""
    results: List[Dict[str, Any]] = []
    for model, label in (("fake", "no-op FakeLLM"), ("tiny", "tiny transformers llama")):
        what = f"2-replica pool, {label}, {BATCH_ROWS} rows"
        if model == "tiny" and missing_transformers():
            results.append(skipped_row("memory", missing_transformers(), what))
            continue
        pools, plains = lifecycles(model, runs_for(model, quick))
        # One sample per child: both children of every run, against the plain processes.
        children = [peak for pool in pools for peak in pool["children_peak_mb"]]
        plain = [peak for run in plains for peak in run["peak_mb"]]
        results.append(
            summary_row(
                "memory",
                f"child peak RSS, {what}",
                "MB",
                children,
                reference=plain,
                reference_kind="plain process" if model == "tiny" else "bare interpreter",
                method="VmHWM of /proc/<pid>/status, read before teardown",
                largest_child_rusage_mb=resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
                / 1024,
            )
        )
        growth = [pool["parent_growth_mb"] for pool in pools]
        if not all(value is not None for value in growth):
            results.append(
                skipped_row(
                    "memory",
                    "this kernel refused to reset the peak (/proc/self/clear_refs), and the "
                    "peak before it would hold what ran earlier in this process",
                    f"parent peak RSS growth, {what}",
                )
            )
        else:
            results.append(
                summary_row(
                    "memory",
                    f"parent peak RSS growth, {what}",
                    "MB",
                    growth,
                    parent_rss_before_mb=[pool["parent_rss_before_mb"] for pool in pools],
                    method="VmHWM after /proc/self/clear_refs, minus VmRSS before the pool",
                    note="the model lives in the children",
                )
            )
    return results


def print_results(rows: List[Dict[str, Any]]) -> None:
    print_table("Peak memory (RSS)", COLUMNS, [cells(row) for row in rows])


def main(argv: Optional[List[str]] = None) -> int:
    return run_script(__doc__, run, print_results, argv)


if __name__ == "__main__":
    raise SystemExit(main())
