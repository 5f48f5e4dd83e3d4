"""Scaling of a balanced pool from 1 to 2 processes on a CPU-bound tiny model.

Each process loads the kit's tiny llama widened to 6 layers of 512 (seeded random weights, kit
tokenizer; see `benchmarks._tiny.load_wide_llama`) with one torch thread
(`torch.set_num_threads(1)` in `load_llm_fn`, `OMP_NUM_THREADS=1` in its environment), and
every row is a ~475-token prompt and exactly 4 new tokens: a fixed amount of CPU (~250 ms),
spent in matrix products, so that it costs the same alone or batched. (The kit's llama itself
is so small that Python overhead dominates and batching two rows costs barely more than one,
which would credit the single process's request coalescing, not the pool.)

The same rows go to a 2-replica `LLMPool` under "balance", and to one
`ProcessLLM` fed the same units the pool cuts (two in flight, as each pool member has). Runs of
the two alternate; the speedup is taken run by run. Ideal: 2x on two free cores. Target: at
least 1.7x. Other work on the machine eats into it: the load average is recorded with it.

A single-member `LLMPool` is refused (it needs 2 or more), hence the bare `ProcessLLM` as the
1-process baseline. Legacy distilabel 0.6.0 is not compared: its venv has no torch, and its
pool sends `num_generations=1` work to one member (see `benchmarks/pool.py`).

Run: `python -m benchmarks.scaling [--quick]` or `python benchmarks/scaling.py [--quick]`.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: import from the repository, not benchmarks/
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import os
import time
from concurrent.futures import Future
from typing import Any, Dict, List, Optional

from benchmarks._summary import COLUMNS, cells, judge, skipped_row, summary_row
from benchmarks._table import print_table, run_script
from benchmarks._tiny import ONE_THREAD_ENV, long_rows, missing_transformers, wide_loader
from distilabel_llm.llm import LLMPool, ProcessLLM
from distilabel_llm.llm.pool._units import balanced_units
from distilabel_llm.tasks import TextGenerationTask

__all__ = ["main", "run"]

REPLICAS = 2
TARGET_SPEEDUP = 1.7
IN_FLIGHT = 2  # units each pool member holds at once (`_UNITS_IN_FLIGHT` in the pool)


def _one_process(llm: ProcessLLM, inputs: List[Dict[str, Any]], units: List[List[int]]) -> float:
    """Seconds for one `ProcessLLM` to make the pool's units, `IN_FLIGHT` at a time."""
    start = time.perf_counter()
    pending: List[Future[Any]] = []
    for unit in units:
        if len(pending) == IN_FLIGHT:
            pending.pop(0).result()
        pending.append(llm.generate([inputs[i] for i in unit]))
    for future in pending:
        future.result()
    return time.perf_counter() - start


def _pool(pool: LLMPool, inputs: List[Dict[str, Any]]) -> float:
    start = time.perf_counter()
    result = pool.generate(inputs)
    wall = time.perf_counter() - start
    if len(result) != len(inputs):
        raise RuntimeError("the pool returned the wrong number of rows")
    return wall


def run(quick: bool = False) -> List[Dict[str, Any]]:
    """Times 1 and 2 processes on the same work; returns one summary row (speedup)."""
    workload = (
        f"balanced pool speedup, {REPLICAS} processes vs 1, widened tiny llama, 1 torch thread each"
    )
    if missing_transformers():
        return [skipped_row("scaling", missing_transformers(), workload)]
    count, pairs = (16, 2) if quick else (32, 5)  # more rows: a shorter tail
    inputs = long_rows(count)
    units = [unit.rows for unit in balanced_units(count, 1, REPLICAS)]
    task = TextGenerationTask()
    loader = wide_loader(torch_threads=1)
    # Both start at once: their children load side by side, which saves a start-up.
    single = ProcessLLM(task, loader, env=ONE_THREAD_ENV)
    pool = LLMPool.from_replicas(task, loader, replicas=REPLICAS, env=ONE_THREAD_ENV)
    try:
        warm = single.generate(long_rows(1))
        pool.generate(long_rows(REPLICAS))
        warm.result()
        load_before = os.getloadavg()[0]
        one: List[float] = []
        two: List[float] = []
        for index in range(pairs):
            if index % 2 == 0:
                one.append(_one_process(single, inputs, units))
                two.append(_pool(pool, inputs))
            else:
                two.append(_pool(pool, inputs))
                one.append(_one_process(single, inputs, units))
        load_after = os.getloadavg()[0]
    finally:
        pool.teardown()
        single.teardown()
    speedups = [a / b for a, b in zip(one, two)]
    row = summary_row(
        "scaling",
        f"{workload}, {count} rows",
        "x",
        speedups,
        reference=[float(REPLICAS)],
        reference_kind="ideal",
        target=f">= {TARGET_SPEEDUP:g}x",
        one_process_s=one,
        two_processes_s=two,
        unit_ms=1e3 * min(one) / len(units),
        load_average=[load_before, load_after],
        note=f"~{1e3 * min(one) / len(units):.0f} ms a row; load avg {load_before:.1f}",
    )
    judge(row, ">=", TARGET_SPEEDUP, on="ours")
    return [row]


def print_results(rows: List[Dict[str, Any]]) -> None:
    print_table("Balanced pool scaling", COLUMNS, [cells(row) for row in rows])


def main(argv: Optional[List[str]] = None) -> int:
    return run_script(__doc__, run, print_results, argv)


if __name__ == "__main__":
    raise SystemExit(main())
