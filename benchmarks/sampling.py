"""Generation settings: distinct samples from a pool of replicas, and the cost of settings.

Distinct samples: the kit's tiny llama samples 8 rows x 4 generations (temperature 1, seed 7),
once in this process and once through a 2-replica `LLMPool` of `ProcessLLM`s under each
strategy; the figure is the mean number of distinct generations per row. Before generation
slots carried their seed (`generation_offset`), every slice of a row a replica made restarted
llama.cpp's sampler at `seed + 0`, and the pool returned 1 or 2 distinct generations per row
where the model alone returned 4. Target: the pool as many as one model alone (llama.cpp: the
very same texts).

Settings on the bridge: `ProcessLLM` round trips of a no-op `FakeLLM`, with and without four
per-call `generation_kwargs`, alternated run by run. Target: within 5% (nothing measurable on
top of a model call).

Run: `python -m benchmarks.sampling [--quick]` or `python benchmarks/sampling.py [--quick]`.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: import from the repository, not benchmarks/
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import functools
import importlib.util
import time
from typing import Any, Dict, List, Optional

from benchmarks._summary import COLUMNS, cells, judge, skipped_row, summary_row
from benchmarks._table import print_table, run_script
from benchmarks._tiny import missing_transformers
from distilabel_llm.llm import LLMPool, ProcessLLM
from distilabel_llm.tasks import TextGenerationTask
from distilabel_llm.testing import FakeLLM

__all__ = ["main", "run"]

ROWS = [{"input": f"Write a line about the number {i}."} for i in range(8)]
GENERATIONS = 4
SAMPLING = {"temperature": 1.0, "seed": 7}
SETTINGS = {"temperature": 0.7, "top_p": 0.9, "max_new_tokens": 16, "seed": 1}
OVERHEAD_TARGET = 1.05


def _llama_cpp(task: Any, *, path: str) -> Any:
    from distilabel_llm.llm.backends.llama_cpp import LlamaCppLLM

    return LlamaCppLLM.from_path(path, task, n_ctx=512, n_threads=1, max_new_tokens=12)


def _transformers(task: Any, *, path: str) -> Any:
    import torch

    from distilabel_llm.llm.backends.transformers import TransformersLLM

    torch.set_num_threads(1)
    return TransformersLLM.from_pretrained(path, task, max_new_tokens=12)


def _distinct(rows: List[List[Any]]) -> float:
    return sum(len({output["raw_output"] for output in row}) for row in rows) / len(rows)


def _distinct_rows(backend: str) -> List[Dict[str, Any]]:
    from distilabel_llm.testing import ensure_tiny_models

    models = ensure_tiny_models()
    if backend == "llama.cpp":
        load = functools.partial(_llama_cpp, path=str(models.gguf_path))
    else:
        load = functools.partial(_transformers, path=str(models.hf_path))
    task = TextGenerationTask()
    alone = load(task).generate(ROWS, num_generations=GENERATIONS, generation_kwargs=SAMPLING)
    rows = []
    for strategy in ("spread", "balance"):
        with LLMPool.from_replicas(task, load, replicas=2, strategy=strategy) as pool:
            pooled = pool.generate(ROWS, num_generations=GENERATIONS, generation_kwargs=SAMPLING)
        same = backend == "llama.cpp" and pooled == alone
        row = summary_row(
            "sampling",
            f"distinct generations per row, {backend}, pool of 2 ({strategy}), "
            f"{len(ROWS)} rows x {GENERATIONS}",
            "gens",
            [_distinct(pooled)],
            reference=[_distinct(alone)],
            reference_kind="1 model",
            target=">= 1.00x of 1 model",
            note="the same texts as 1 model" if same else None,
        )
        judge(row, ">=", 1.0)
        rows.append(row)
    return rows


def _round_trips(llm: ProcessLLM, requests: int, settings: Optional[Dict[str, Any]]) -> float:
    """Seconds for `requests` one-row round trips, each awaited before the next."""
    start = time.perf_counter()
    for _ in range(requests):
        llm.generate([{"input": "ping"}], generation_kwargs=settings).result()
    return time.perf_counter() - start


def _settings_row(quick: bool) -> Dict[str, Any]:
    repeats = 9 if quick else 15  # a round trip is ~0.4 ms: many runs to see past the noise
    requests = 1_000 if quick else 2_000
    plain: List[float] = []
    with_settings: List[float] = []
    with ProcessLLM(TextGenerationTask(), FakeLLM) as llm:
        _round_trips(llm, 200, SETTINGS)  # warm
        for index in range(repeats):
            runs = [(plain, None), (with_settings, SETTINGS)]
            for samples, settings in runs if index % 2 == 0 else reversed(runs):
                samples.append(_round_trips(llm, requests, settings))
    row = summary_row(
        "sampling",
        f"ProcessLLM round trips with 4 per-call generation_kwargs, {requests:,} requests",
        "s",
        with_settings,
        reference=plain,
        reference_kind="no settings",
        target=f"<= {OVERHEAD_TARGET:.2f}x",
        note=f"{1e6 * min(with_settings) / requests:.0f} vs {1e6 * min(plain) / requests:.0f} "
        "us a round trip",
    )
    judge(row, "<=", OVERHEAD_TARGET)
    return row


def run(quick: bool = False) -> List[Dict[str, Any]]:
    """Measures distinct samples through pools and the bridge's cost of settings."""
    rows: List[Dict[str, Any]] = []
    if importlib.util.find_spec("llama_cpp") is None:
        rows.append(skipped_row("sampling", "llama-cpp-python not installed", "llama.cpp"))
    else:
        rows.extend(_distinct_rows("llama.cpp"))
    why = missing_transformers()
    if why is not None:
        rows.append(skipped_row("sampling", why, "transformers"))
    else:
        rows.extend(_distinct_rows("transformers"))
    rows.append(_settings_row(quick))
    return rows


def print_results(rows: List[Dict[str, Any]]) -> None:
    print_table("Generation settings", COLUMNS, [cells(row) for row in rows])


def main(argv: Optional[List[str]] = None) -> int:
    return run_script(__doc__, run, print_results, argv)


if __name__ == "__main__":
    raise SystemExit(main())
