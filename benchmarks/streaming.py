"""Batch jobs over pools: a `Pipeline` job against the pool called once on the same rows, and a
job with a generator and a labeller against the slower of the two alone.

Members are `ProcessLLM`s running `FakeLLM`s that sleep 4 ms a generation, started and warmed
before timing. Rows: a job of 400 rows in batches of 8 over a balanced pool of 4 replicas,
against one `pool.generate` of the 400 rows (target: within 1.05x); a job of 800 rows whose
generator and labeller are each a balanced pool of 2, against the slower of the generator-only
and labeller-only jobs (target: within 1.10x). The last costs a fixed time on top, whatever the
job's length: the labeller waits for the generator's first batches, and labels its last ones
alone (about 70 ms here: 1.15x on a job of 200 rows, 1.02x on 1600). Runs alternate. The note
gives how busy the job kept the pool's members (`Pipeline.stats.busy_s_by_member` against the
job's time) and the longest any of them sat idle, waiting on the slowest member or on the job
(the summary's Idle).

A third row keeps the first honest for members that batch, as a GPU model does: `FakeLLM`s that
sleep 20 ms a call and 1 ms a row, 400 rows in batches of 16, against one `pool.generate`. A
member's process merges the calls queued on it into one backend call, so a job that keeps too
few rows queued on each member (serving the pool's calls one after another, say) pays the
fixed cost of a call for every row or two: measured, 4x slower.

Run: `python -m benchmarks.streaming [--quick]` or `python benchmarks/streaming.py [--quick]`.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: import from the repository, not benchmarks/
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import functools
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

from benchmarks._summary import COLUMNS, cells, judge, summary_row
from benchmarks._table import print_table, run_script
from distilabel_llm.llm import LLMPool, ProcessLLM
from distilabel_llm.pipeline import Pipeline
from distilabel_llm.tasks import TextGenerationTask
from distilabel_llm.testing import FakeLLM

__all__ = ["main", "run"]

LATENCY = 0.004
BATCH = 8
POOL_TARGET = 1.05
OVERLAP_ROWS = 800
# A batching member: a fixed cost a backend call, a small one a row.
BATCHING_CALL = 0.02
BATCHING_ROW = 0.001
BATCHING_BATCH = 16
OVERLAP_TARGET = 1.10


def _pool(replicas: int, name: str, **latency: float) -> LLMPool:
    task = TextGenerationTask()
    latency = latency or {"latency_per_generation": LATENCY}
    members = [
        ProcessLLM(task, functools.partial(FakeLLM, model_name=f"{name}-{i}", **latency))
        for i in range(replicas)
    ]
    for member in members:
        member.generate([{"input": "warm-up"}]).result()
    return LLMPool(members, strategy="balance")


def _seconds(call: Callable[[], Any]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def _run(pipeline: Pipeline, rows: List[Dict[str, Any]], batch: int = BATCH) -> Callable[[], Any]:
    return lambda: pipeline.generate(rows, batch_size=batch, display_progress_bar=False)


def _job(rows: List[Dict[str, Any]], **models: Any) -> Callable[[], Any]:
    return _run(Pipeline(**models), rows)


def _busy_share(pipeline: Pipeline) -> str:
    """How busy the job kept the generator's members: the least and the most."""
    stats = pipeline.stats
    assert stats is not None
    busy = list(stats.busy_s_by_member.values())
    shares = [seconds / stats.elapsed_s for seconds in busy]
    idle = stats.elapsed_s - min(busy)
    return (
        f"members busy {100 * min(shares):.0f}-{100 * max(shares):.0f}% of the job's time, "
        f"idle at most {1000 * idle:.0f} ms"
    )


def _job_and_call(
    pool: LLMPool, rows: List[Dict[str, Any]], batch: int, repeats: int
) -> Tuple[List[float], List[float], str]:
    """Seconds of a job over `pool` and of one `pool.generate`, alternating, and how busy the
    job kept the members; tears the pool down."""
    try:
        jobs: List[float] = []
        calls: List[float] = []
        pipeline = Pipeline(generator=pool)
        job = _run(pipeline, rows, batch)
        for index in range(repeats):
            pair = [(jobs, job), (calls, lambda: pool.generate(rows))]
            for times, call in pair if index % 2 == 0 else reversed(pair):
                times.append(_seconds(call))
        return jobs, calls, _busy_share(pipeline)
    finally:
        pool.teardown()


def run(quick: bool = False) -> List[Dict[str, Any]]:
    """Measures both comparisons; returns summary rows."""
    repeats = 3 if quick else 7
    rows = [{"input": f"row {i}"} for i in range(400)]
    jobs, calls, busy = _job_and_call(_pool(4, "replica"), rows, BATCH, repeats)
    batching = _pool(4, "batching", latency=BATCHING_CALL, latency_per_generation=BATCHING_ROW)
    batching_jobs, batching_calls, _ = _job_and_call(batching, rows, BATCHING_BATCH, repeats)
    rows = [{"input": f"row {i}"} for i in range(OVERLAP_ROWS)]
    generator, labeller = _pool(2, "generator"), _pool(2, "labeller")
    try:
        both: List[float] = []
        slower: List[float] = []
        for _ in range(repeats):
            alone = _seconds(_job(rows, generator=generator))
            alone = max(alone, _seconds(_job(rows, labeller=labeller)))
            slower.append(alone)
            both.append(_seconds(_job(rows, generator=generator, labeller=labeller)))
    finally:
        generator.teardown()
        labeller.teardown()
    results = [
        summary_row(
            "streaming",
            f"Pipeline job, 400 rows in batches of {BATCH}, balanced pool of 4 replicas "
            f"({LATENCY * 1000:g} ms a row), against one pool.generate of the same rows "
            f"[physical floor, 400 rows x {LATENCY * 1000:g} ms / 4 members: "
            f"{400 * LATENCY / 4 * 1000:g} ms]",
            "s",
            jobs,
            reference=calls,
            reference_kind="one pool.generate",
            target=f"<= {POOL_TARGET:g}x",
            note=busy,
            physical_floor_s=400 * LATENCY / 4,
        ),
        summary_row(
            "streaming",
            f"Pipeline job, 400 rows in batches of {BATCHING_BATCH}, balanced pool of 4 "
            f"batching replicas ({BATCHING_CALL * 1000:g} ms a call + {BATCHING_ROW * 1000:g} ms "
            "a row, like a GPU), against one pool.generate of the same rows [a member merges "
            "the calls queued on it into one batch]",
            "s",
            batching_jobs,
            reference=batching_calls,
            reference_kind="one pool.generate",
        ),
        summary_row(
            "streaming",
            f"Pipeline job with a generator and a labeller (each a pool of 2), {OVERLAP_ROWS} rows "
            f"in batches of {BATCH}, against the slower of the two alone",
            "s",
            both,
            reference=slower,
            reference_kind="slower stage alone",
            target=f"<= {OVERLAP_TARGET:g}x",
        ),
    ]
    for row, target in zip(results, (POOL_TARGET, None, OVERLAP_TARGET)):
        if target is not None:
            judge(row, "<=", target)
    return results


def print_results(rows: List[Dict[str, Any]]) -> None:
    print_table("Batch jobs over pools", COLUMNS, [cells(row) for row in rows])


def main(argv: Optional[List[str]] = None) -> int:
    return run_script(__doc__, run, print_results, argv)


if __name__ == "__main__":
    raise SystemExit(main())
