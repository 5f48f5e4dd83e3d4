"""`ProcessLLM`: child start-up, sequential and pipelined round trips, against legacy 0.6.0.

A no-op `FakeLLM` runs in the child, so the figures are the bridge's own cost: a sequential
round trip is one `generate(...).result()` of one row; a pipelined run submits every request
before awaiting any. Legacy distilabel 0.6.0 runs the same workloads in its own venv (see
`benchmarks/_legacy.py`), when it is there. Targets: sequential at least legacy's rate,
pipelined at least 5x legacy's, the child ready for a no-op model within 1 s.

Run: `python -m benchmarks.process [--quick]` or `python benchmarks/process.py [--quick]`.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: import from the repository, not benchmarks/
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import time
from typing import Any, Dict, List, Optional

from benchmarks._legacy import run_legacy
from benchmarks._table import Stats, print_table, run_script
from distilabel_llm.llm import ProcessLLM
from distilabel_llm.tasks import TextGenerationTask
from distilabel_llm.testing import FakeLLM

__all__ = ["main", "run"]

ROW = [{"input": "ping"}]


def _ready_s(start_method: str) -> float:
    start = time.perf_counter()
    with ProcessLLM(TextGenerationTask(), FakeLLM, start_method=start_method) as llm:
        llm.generate(ROW).result()
        return time.perf_counter() - start


def sequential_rate(llm: Any, requests: int) -> float:
    """One-row requests per second, each awaited before the next is sent."""
    start = time.perf_counter()
    for _ in range(requests):
        llm.generate(ROW).result()
    return requests / (time.perf_counter() - start)


def pipelined_rate(llm: Any, requests: int) -> float:
    """One-row requests per second, all sent before any is awaited."""
    start = time.perf_counter()
    futures = [llm.generate(ROW) for _ in range(requests)]
    for future in futures:
        future.result()
    return requests / (time.perf_counter() - start)


def _legacy(workload: str, requests: int, repeats: int) -> Optional[Dict[str, Any]]:
    result = run_legacy(workload, timeout_s=120 * repeats, requests=requests, repeats=repeats)
    return None if result is None else result["median"]


def run(quick: bool = False) -> List[Dict[str, Any]]:
    """Measures start-up and round-trip rates; returns one dict per workload."""
    repeats = 3 if quick else 5
    requests = 2_000 if quick else 5_000
    ready = {
        method: Stats.of(_ready_s(method) for _ in range(repeats)) for method in ("spawn", "fork")
    }
    with ProcessLLM(TextGenerationTask(), FakeLLM) as llm:
        llm.generate(ROW).result()
        sequential = Stats.of(sequential_rate(llm, requests) for _ in range(repeats))
        pipelined = Stats.of(pipelined_rate(llm, requests) for _ in range(repeats))
    legacy_sequential = _legacy("process_sequential", requests, repeats)
    legacy_pipelined = _legacy("process_pipelined", requests, repeats)
    rows: List[Dict[str, Any]] = []
    for method, stats in ready.items():
        rows.append(
            {
                "benchmark": "process",
                "workload": f"child ready, no-op model ({method})",
                "unit": "s",
                "ours": stats.median,
                "ours_min": stats.min,
                "ours_max": stats.max,
                "legacy": None
                if legacy_sequential is None or method != "fork"
                else legacy_sequential["ready_s"],
                "target": "< 1 s",
                "met": stats.median < 1.0,
                "goal": ("<", 1.0),
                "samples": list(stats.samples),
                "repeat": repeats,
            }
        )
    for name, stats, legacy, factor in (
        ("sequential round trips", sequential, legacy_sequential, 1.0),
        ("pipelined round trips", pipelined, legacy_pipelined, 5.0),
    ):
        legacy_rate = None if legacy is None else legacy["rate_per_s"]
        rows.append(
            {
                "benchmark": "process",
                "workload": f"{name}, {requests:,} requests",
                "unit": "req/s",
                "ours": stats.median,
                "ours_min": stats.min,
                "ours_max": stats.max,
                "legacy": legacy_rate,
                "target": f">= {factor:g}x legacy",
                "met": None if legacy_rate is None else stats.median >= factor * legacy_rate,
                # Legacy is a median from its own venv: our runs are judged against it.
                "goal": None if legacy_rate is None else (">=", factor * legacy_rate),
                "samples": list(stats.samples),
                "repeat": repeats,
            }
        )
    return rows


def _figure(value: Optional[float], unit: str) -> str:
    if value is None:
        return "—"
    return f"{value * 1e3:,.0f} ms" if unit == "s" else f"{value:,.0f}"


def print_results(rows: List[Dict[str, Any]]) -> None:
    print_table(
        "ProcessLLM bridge: no-op model in the child",
        [
            "workload",
            "ours (median)",
            "ours min..max",
            "legacy 0.6.0",
            "ours / legacy",
            "target",
            "met",
        ],
        [
            [
                f"{row['workload']} [{row['unit']}]",
                _figure(row["ours"], row["unit"]),
                f"{_figure(row['ours_min'], row['unit'])}..{_figure(row['ours_max'], row['unit'])}",
                _figure(row["legacy"], row["unit"]),
                "—" if not row["legacy"] else f"{row['ours'] / row['legacy']:.2f}x",
                row["target"],
                {True: "yes", False: "NO", None: "—"}[row["met"]],
            ]
            for row in rows
        ],
        caption="Legacy runs in its own venv with fork start (its default on Linux).",
    )


def main(argv: Optional[List[str]] = None) -> int:
    return run_script(__doc__, run, print_results, argv)


if __name__ == "__main__":
    raise SystemExit(main())
