"""Ray members against `ProcessLLM` members: the cost of running a model in a Ray actor.

A local Ray instance is started once (its start-up is reported, not counted). Every workload
runs the same model behind a `RayLLM` and behind a `ProcessLLM`, alternating run by run, and
the ratio is taken run by run (ours = Ray, reference = ProcessLLM):

- round trips of a no-op `FakeLLM`, one at a time and pipelined: the bridge's own cost, which
  a model call dwarfs (informative, no target);
- a balanced pool of 2 members on a `FakeLLM` of 20 ms per generation, 64 rows: the makespan
  a pool user sees. Target: within 1.05x of the `ProcessLLM` pool;
- the same with 2 replicas of the widened tiny llama (CPU-bound, one thread each; see
  `benchmarks/scaling.py`);
- where a CUDA GPU is present, a GPU-bound model (`load_gpu_llama`) in each kind of member,
  and called directly;
- start-up: construction to first result of a no-op model, Ray already running.

Legacy distilabel 0.6.0 has no Ray member, so nothing is compared with it here.

Run: `python -m benchmarks.ray_members [--quick]` or `python benchmarks/ray_members.py [--quick]`.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: import from the repository, not benchmarks/
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import functools
import importlib.util
import statistics
import time
from typing import Any, Callable, Dict, List, Optional

from benchmarks._summary import COLUMNS, cells, judge, skipped_row, summary_row
from benchmarks._table import print_table, run_script
from benchmarks._tiny import (
    ONE_THREAD_ENV,
    load_fake,
    long_rows,
    missing_transformers,
    rows,
    tiny_model_path,
    wide_loader,
)
from benchmarks.process import ROW, pipelined_rate, sequential_rate
from distilabel_llm.llm import LLMPool, ProcessLLM, RayLLM
from distilabel_llm.tasks import TextGenerationTask
from distilabel_llm.testing import FakeLLM

__all__ = ["main", "run"]

BENCHMARK = "ray_members"
POOL_TARGET = 1.05
MEMBERS = 2
Factory = Callable[[], Any]


def _makespan(pool: LLMPool, inputs: List[Dict[str, Any]]) -> float:
    start = time.perf_counter()
    result = pool.generate(inputs)
    wall = time.perf_counter() - start
    if len(result) != len(inputs):
        raise RuntimeError("the pool returned the wrong number of rows")
    return wall


def _first_result_s(make: Factory) -> float:
    start = time.perf_counter()
    with make() as llm:
        llm.generate(ROW).result()
        return time.perf_counter() - start


def _pair(ray_side: Callable[[], float], process_side: Callable[[], float], runs: int) -> tuple:
    """Runs both sides `runs` times, alternating which goes first."""
    ours: List[float] = []
    reference: List[float] = []
    for index in range(runs):
        if index % 2 == 0:
            ours.append(ray_side())
            reference.append(process_side())
        else:
            reference.append(process_side())
            ours.append(ray_side())
    return ours, reference


def _round_trips(task: TextGenerationTask, quick: bool) -> List[Dict[str, Any]]:
    requests, runs = (500, 3) if quick else (2000, 5)
    results = []
    with RayLLM(task, load_fake) as ray_llm, ProcessLLM(task, load_fake) as process_llm:
        pipelined_rate(ray_llm, 100)  # warm both paths
        pipelined_rate(process_llm, 100)
        for name, rate in (("one at a time", sequential_rate), ("pipelined", pipelined_rate)):
            ours, reference = _pair(
                functools.partial(rate, ray_llm, requests),
                functools.partial(rate, process_llm, requests),
                runs,
            )
            results.append(
                summary_row(
                    BENCHMARK,
                    f"round trips of a no-op model, {name}, {requests} requests",
                    "req/s",
                    ours,
                    reference=reference,
                    reference_kind="ProcessLLM",
                    note="the bridge alone: a model call dwarfs it",
                )
            )
    return results


def _pools(task: TextGenerationTask, loader: Any, count: int, runs: int, workload: str) -> Dict:
    inputs = long_rows(count) if "llama" in workload else rows(count)
    ray_pool = LLMPool.from_ray(task, loader, replicas=MEMBERS, num_cpus=1)
    process_pool = LLMPool.from_replicas(task, loader, replicas=MEMBERS, env=ONE_THREAD_ENV)
    with ray_pool, process_pool:
        for member in [*ray_pool.llms, *process_pool.llms]:  # every member loaded and warm
            member.generate(inputs[:1]).result()
        ours, reference = _pair(
            functools.partial(_makespan, ray_pool, inputs),
            functools.partial(_makespan, process_pool, inputs),
            runs,
        )
    row = summary_row(
        BENCHMARK,
        f"balanced pool of {MEMBERS}, {workload}, {count} rows: makespan",
        "s",
        ours,
        reference=reference,
        reference_kind="ProcessLLM pool",
        target=f"<= {POOL_TARGET:.2f}x",
    )
    judge(row, "<=", POOL_TARGET)
    return row


def load_gpu_llama(task: Any, *, path: str, max_new_tokens: int = 32) -> Any:
    """The tiny llama widened to 1024 x 8 layers, on the GPU, every output `max_new_tokens`
    long: a model whose calls are bound by the GPU and its kernel launches."""
    import torch
    import transformers

    from distilabel_llm.llm.backends.transformers import TransformersLLM

    config = transformers.AutoConfig.from_pretrained(path)
    config.hidden_size, config.intermediate_size, config.num_hidden_layers = 1024, 2816, 8
    config.num_attention_heads, config.num_key_value_heads = 16, 8
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(config).eval().to("cuda")
    model.generation_config.min_new_tokens = max_new_tokens
    tokenizer = transformers.AutoTokenizer.from_pretrained(path)
    return TransformersLLM(model, tokenizer, task, max_new_tokens=max_new_tokens)


def _gpu_member(task: TextGenerationTask, runs: int) -> Dict[str, Any]:
    """One GPU model called directly, in a `ProcessLLM` and in a `RayLLM`: 8 calls of 16 rows,
    sent at once to the members (which merge them) and one after another directly."""
    workload = "GPU model (tiny llama widened to 1024x8), 8 calls of 16 rows, 32 tokens each"
    import torch

    if not torch.cuda.is_available():
        return skipped_row(BENCHMARK, "no CUDA GPU here", workload)
    load = functools.partial(load_gpu_llama, path=tiny_model_path())
    batches = [rows(128)[i : i + 16] for i in range(0, 128, 16)]
    direct = load(task)

    def direct_s() -> float:
        start = time.perf_counter()
        for batch in batches:
            direct.generate(batch)
        return time.perf_counter() - start

    def member_s(llm: Any) -> float:
        start = time.perf_counter()
        for future in [llm.generate(batch) for batch in batches]:
            future.result()
        return time.perf_counter() - start

    with RayLLM(task, load, num_gpus=0.3) as ray_llm, ProcessLLM(task, load) as process_llm:
        direct_s(), member_s(ray_llm), member_s(process_llm)  # all three loaded and warm
        ours, reference = _pair(
            functools.partial(member_s, ray_llm), functools.partial(member_s, process_llm), runs
        )
        raw = [direct_s() for _ in range(runs)]
    return summary_row(
        BENCHMARK,
        workload,
        "s",
        ours,
        reference=reference,
        reference_kind="ProcessLLM",
        note=f"called directly, one call after another: {statistics.median(raw):.2f} s",
        direct_s=raw,
    )


def run(quick: bool = False) -> List[Dict[str, Any]]:
    """Times Ray and `ProcessLLM` members side by side; returns summary rows."""
    if importlib.util.find_spec("ray") is None:
        return [skipped_row(BENCHMARK, "ray not installed (pip install 'distilabel_llm[ray]')")]
    import ray

    start = time.perf_counter()
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(include_dashboard=False, log_to_driver=False)
    ray_start_s = time.perf_counter() - start
    task = TextGenerationTask()
    runs = 3 if quick else 5
    try:
        results = _round_trips(task, quick)
        fake = functools.partial(FakeLLM, latency_per_generation=0.02)
        results.append(_pools(task, fake, 64, runs, "FakeLLM 20 ms a generation"))
        if missing_transformers():
            results.append(skipped_row(BENCHMARK, missing_transformers(), "widened tiny llama"))
        else:
            results.append(
                _pools(
                    task,
                    wide_loader(torch_threads=1),
                    16 if quick else 32,
                    runs,
                    "widened tiny llama, 1 thread each",
                )
            )
        if missing_transformers():
            results.append(skipped_row(BENCHMARK, missing_transformers(), "GPU model"))
        else:
            results.append(_gpu_member(task, runs))
        ours, reference = _pair(
            functools.partial(_first_result_s, lambda: RayLLM(task, load_fake)),
            functools.partial(_first_result_s, lambda: ProcessLLM(task, load_fake)),
            runs,
        )
        results.append(
            summary_row(
                BENCHMARK,
                "start-up to first result, no-op model, Ray already running",
                "s",
                ours,
                reference=reference,
                reference_kind="ProcessLLM",
                note=f"starting local Ray took {ray_start_s:.1f} s once",
                ray_start_s=ray_start_s,
            )
        )
    finally:
        if started_here:
            ray.shutdown()
    return results


def print_results(rows: List[Dict[str, Any]]) -> None:
    print_table("Ray members against ProcessLLM members", COLUMNS, [cells(row) for row in rows])


def main(argv: Optional[List[str]] = None) -> int:
    return run_script(__doc__, run, print_results, argv)


if __name__ == "__main__":
    raise SystemExit(main())
