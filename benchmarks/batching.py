"""Batches grouped by prompt length: `TransformersLLM(batch_size=8)` against static batches of
8 rows in arrival order, on the kit's tiny llama.

48 rows whose prompts run from about 10 to 400 tokens, in a random order (fixed seed), 16 new
tokens each, greedy. Ours is one `generate` call over every row with `batch_size=8`: batches
of prompts of similar length. The reference is what a job with `batch_size=8` did before:
one call per 8 rows in arrival order, each padded to its longest prompt. Figures: output
tokens per second (target: at least 1.3x the arrival-order batches), with the same outputs
(checked), and the share of prompt tokens that are padding on each side.

Run: `python -m benchmarks.batching [--quick]` or `python benchmarks/batching.py [--quick]`.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: import from the repository, not benchmarks/
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import random
import time
from typing import Any, Dict, List, Optional, Sequence

from benchmarks._summary import COLUMNS, cells, skipped_row, summary_row
from benchmarks._table import print_table, run_script
from benchmarks._tiny import missing_transformers

__all__ = ["main", "run"]

ROWS = 48
BATCH = 8
MAX_NEW_TOKENS = 16
TARGET = 1.3
_WORDS = [
    "the",
    "river",
    "runs",
    "past",
    "old",
    "stone",
    "walls",
    "and",
    "quiet",
    "green",
    "fields",
    "toward",
    "the",
    "sea",
]


def _rows() -> List[Dict[str, Any]]:
    draw = random.Random(7)
    lengths = [draw.randint(3, 160) for _ in range(ROWS)]
    return [{"input": " ".join(_WORDS[i % len(_WORDS)] for i in range(n))} for n in lengths]


def _padding_share(lengths: Sequence[int], batches: List[List[int]]) -> float:
    """Padding tokens over all prompt tokens, batches padded to their longest prompt."""
    padded = sum(max(lengths[i] for i in batch) * len(batch) for batch in batches)
    return 1 - sum(lengths) / padded


def run(quick: bool = False) -> List[Dict[str, Any]]:
    """Measures grouped against arrival-order batches; returns summary rows."""
    missing = missing_transformers()
    if missing:
        return [skipped_row("batching", missing, "transformers")]
    import torch

    from distilabel_llm.llm.transformers import TransformersLLM
    from distilabel_llm.tasks import TextGenerationTask
    from distilabel_llm.testing import ensure_tiny_models

    torch.set_num_threads(1)
    path = str(ensure_tiny_models().hf_path)
    # The row's text alone is the prompt, so that prompt lengths are the workload's.
    settings = {
        "max_new_tokens": MAX_NEW_TOKENS,
        "temperature": 0.0,
        "prompt_formatting_fn": lambda prompt: prompt.formatted_prompt,
    }
    grouped = TransformersLLM(path, TextGenerationTask(), batch_size=BATCH, **settings)
    static = TransformersLLM(path, TextGenerationTask(), **settings)
    rows = _rows()

    def tokens_per_second(call: Any) -> Any:
        start = time.perf_counter()
        outputs = call()
        tokens = sum(row[0]["statistics"]["output_tokens"] for row in outputs)
        return tokens / (time.perf_counter() - start), [row[0] for row in outputs]

    def arrival_order() -> List[Any]:
        return [row for i in range(0, ROWS, BATCH) for row in static.generate(rows[i : i + BATCH])]

    try:
        grouped.generate(rows[:BATCH])  # loads and warms both
        static.generate(rows[:BATCH])
        ours: List[float] = []
        reference: List[float] = []
        for index in range(3 if quick else 7):
            pair = [(ours, lambda: grouped.generate(rows)), (reference, arrival_order)]
            texts = []
            for speeds, call in pair if index % 2 == 0 else reversed(pair):
                speed, made = tokens_per_second(call)
                speeds.append(speed)
                texts.append(made)
            if [o["raw_output"] for o in texts[0]] != [o["raw_output"] for o in texts[1]]:
                raise RuntimeError("grouped batches changed the greedy outputs")
        lengths = [output["statistics"]["input_tokens"] for output in texts[0]]
    finally:
        grouped.close()
        static.close()
    by_length = sorted(range(ROWS), key=lambda i: lengths[i])
    padding = {
        "grouped": _padding_share(
            lengths, [by_length[i : i + BATCH] for i in range(0, ROWS, BATCH)]
        ),
        "arrival": _padding_share(
            lengths, [list(range(i, i + BATCH)) for i in range(0, ROWS, BATCH)]
        ),
    }
    row = summary_row(
        "batching",
        f"output tokens/s, {ROWS} rows of {min(lengths)}-{max(lengths)} prompt tokens, batches of "
        f"{BATCH} grouped by length vs in arrival order, tiny transformers llama",
        "tok/s",
        ours,
        reference=reference,
        reference_kind="arrival order",
        target=f">= {TARGET:g}x arrival order",
        note=f"padding: {100 * padding['grouped']:.0f}% of prompt tokens grouped, "
        f"{100 * padding['arrival']:.0f}% in arrival order; same greedy outputs",
    )
    row["met"] = row["ratio"] >= TARGET
    return [row]


def print_results(rows: List[Dict[str, Any]]) -> None:
    print_table("Batches grouped by prompt length", COLUMNS, [cells(row) for row in rows])


def main(argv: Optional[List[str]] = None) -> int:
    return run_script(__doc__, run, print_results, argv)


if __name__ == "__main__":
    raise SystemExit(main())
