"""Batches grouped by prompt length: `TransformersLLM(batch_size=8)` against static batches of
8 rows in arrival order, on the kit's tiny llama.

48 rows whose prompts run from about 10 to 400 tokens, in a random order (fixed seed), 16 new
tokens each, greedy. Ours is one `generate` call over every row with `batch_size=8`: batches
of prompts of similar length. The reference is what a job with `batch_size=8` did before:
one call per 8 rows in arrival order, each padded to its longest prompt. Figures: output
tokens per second (target: at least 1.3x the arrival-order batches), with the same outputs
(checked), and on each side the share of the positions computed that were padding (prompts
padded to their batch's longest, steps run after a row's EOS), as `TransformersLLM` reports it
in each output's `statistics["padding_tokens"]` and a job's summary shows it.

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


def _padding_share(outputs: Sequence[Any]) -> float:
    """Padding over all positions computed, as the backend reports them (the job summary's)."""
    counts = [output["statistics"] for output in outputs]
    padding = sum(c["padding_tokens"] for c in counts)
    return padding / (padding + sum(c["input_tokens"] + c["output_tokens"] for c in counts))


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
        made: Dict[str, List[Any]] = {}
        for index in range(5 if quick else 9):
            pair = [
                ("grouped", ours, lambda: grouped.generate(rows)),
                ("arrival", reference, arrival_order),
            ]
            for side, speeds, call in pair if index % 2 == 0 else reversed(pair):
                speed, made[side] = tokens_per_second(call)
                speeds.append(speed)
            if [o["raw_output"] for o in made["grouped"]] != [
                o["raw_output"] for o in made["arrival"]
            ]:
                raise RuntimeError("grouped batches changed the greedy outputs")
        lengths = [output["statistics"]["input_tokens"] for output in made["grouped"]]
    finally:
        grouped.close()
        static.close()
    padding = {side: _padding_share(outputs) for side, outputs in made.items()}
    row = summary_row(
        "batching",
        f"output tokens/s, {ROWS} rows of {min(lengths)}-{max(lengths)} prompt tokens, batches of "
        f"{BATCH} grouped by length vs in arrival order, tiny transformers llama",
        "tok/s",
        ours,
        reference=reference,
        reference_kind="arrival order",
        target=f">= {TARGET:g}x arrival order",
        note=f"padding: {100 * padding['grouped']:.0f}% of the positions computed grouped, "
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
