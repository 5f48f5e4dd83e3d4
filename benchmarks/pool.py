"""`LLMPool`: makespan of both strategies against the ideal and legacy 0.6.0.

Members are `ProcessLLM`s running `FakeLLM`s that sleep a fixed time per generation, started
and warmed before timing, so the figure is the generation makespan alone. The ideal shares the
work in proportion to each member's speed: `rows * num_generations / sum(1 / latency)`.
Workloads: 4 replicas of 20 ms at `num_generations=1` (the multi-GPU data-parallel case), and a
10 ms and a 100 ms member at `num_generations=4` (pooling models of different speeds).
Targets, under "balance": within 1.15x and 1.2x of the ideal. "spread" is bound by its
slowest member by design (each member makes its share of every row).

Run: `python -m benchmarks.pool [--quick]` or `python benchmarks/pool.py [--quick]`.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: import from the repository, not benchmarks/
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import functools
import time
from typing import Any, Dict, List, Optional, Sequence

from benchmarks._legacy import run_legacy
from benchmarks._table import Stats, print_table, run_script
from distilabel_llm.llm import LLMPool, ProcessLLM
from distilabel_llm.tasks import TextGenerationTask
from distilabel_llm.testing import FakeLLM

__all__ = ["main", "run"]

WORKLOADS = (
    # name, latency per generation of each member, rows, num_generations, target under balance
    ("replicas", (0.02, 0.02, 0.02, 0.02), 64, 1, 1.15),
    ("mixed", (0.01, 0.1), 32, 4, 1.2),
)


def _pool(latencies: Sequence[float]) -> LLMPool:
    task = TextGenerationTask()
    members = [
        ProcessLLM(
            task,
            functools.partial(FakeLLM, model_name=f"member-{i}", latency_per_generation=latency),
        )
        for i, latency in enumerate(latencies)
    ]
    for member in members:
        member.generate([{"input": "warm-up"}]).result()
    return LLMPool(members)


def _makespan(pool: LLMPool, strategy: str, rows: int, num_generations: int) -> float:
    pool.strategy = strategy  # type: ignore[assignment]
    inputs = [{"input": f"row {i}"} for i in range(rows)]
    start = time.perf_counter()
    result = pool.generate(inputs, num_generations=num_generations)
    wall = time.perf_counter() - start
    if len(result) != rows or any(len(row) != num_generations for row in result):
        raise RuntimeError(f"the pool returned bad rows under {strategy!r}")
    return wall


def run(quick: bool = False) -> List[Dict[str, Any]]:
    """Times each workload under both strategies; returns one dict per workload and strategy."""
    repeats = 3 if quick else 5
    results: List[Dict[str, Any]] = []
    for name, latencies, rows, num_generations, target in WORKLOADS:
        if quick:  # half the rows: "spread" and legacy take 5.5x the ideal on "mixed"
            rows //= 2
        ideal = rows * num_generations / sum(1.0 / latency for latency in latencies)
        with _pool(latencies) as pool:
            walls = {
                strategy: Stats.of(
                    _makespan(pool, strategy, rows, num_generations) for _ in range(repeats)
                )
                for strategy in ("balance", "spread")
            }
        legacy = run_legacy(
            f"pool_{name}" if name != "replicas" else "pool_replicas",
            timeout_s=60 * repeats,
            inputs=rows,
            num_generations=num_generations,
            repeats=repeats,
            **(
                {"members": len(latencies), "latency_per_generation": latencies[0]}
                if name == "replicas"
                else {"latencies": list(latencies)}
            ),
        )
        legacy_wall = None if legacy is None else legacy["median"]["wall_s"]
        for strategy, wall in walls.items():
            results.append(
                {
                    "benchmark": "pool",
                    "workload": name,
                    "members_ms": [round(1e3 * latency) for latency in latencies],
                    "rows": rows,
                    "num_generations": num_generations,
                    "strategy": strategy,
                    "ideal_s": ideal,
                    "wall_s": wall.median,
                    "wall_s_samples": list(wall.samples),
                    "repeat": repeats,
                    "wall_s_min": wall.min,
                    "wall_s_max": wall.max,
                    "ratio": wall.median / ideal,
                    "target_ratio": target if strategy == "balance" else None,
                    "legacy_wall_s": legacy_wall,
                    "legacy_ratio": None if legacy_wall is None else legacy_wall / ideal,
                }
            )
    return results


def _optional(value: Optional[float], pattern: str) -> str:
    return "—" if value is None else pattern.format(value)


def print_results(rows: List[Dict[str, Any]]) -> None:
    print_table(
        "LLMPool makespan (members started and warm)",
        [
            "workload",
            "strategy",
            "ideal s",
            "wall s",
            "min..max",
            "wall / ideal",
            "target",
            "legacy 0.6.0 / ideal",
        ],
        [
            [
                f"{row['workload']}: members {row['members_ms']} ms, "
                f"{row['rows']} rows x {row['num_generations']}",
                row["strategy"],
                f"{row['ideal_s']:.3f}",
                f"{row['wall_s']:.3f}",
                f"{row['wall_s_min']:.3f}..{row['wall_s_max']:.3f}",
                f"{row['ratio']:.2f}x",
                _optional(row["target_ratio"], "<= {:.2f}x"),
                _optional(row["legacy_ratio"], "{:.2f}x"),
            ]
            for row in rows
        ],
        caption=(
            "Legacy 0.6.0 has one strategy: 'spread', with the remainder drawn once per call."
        ),
    )


def main(argv: Optional[List[str]] = None) -> int:
    return run_script(__doc__, run, print_results, argv)


if __name__ == "__main__":
    raise SystemExit(main())
