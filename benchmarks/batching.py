"""Batches that waste nothing: `TransformersLLM(batch_size=8)` (batches grouped by prompt
length) and `TransformersLLM(batch_size=8, continuous_batching=True)` against static batches of
8 rows in arrival order, on the kit's tiny llama.

48 rows whose prompts run from about 10 to 400 tokens, in a random order (fixed seed), up to 48
new tokens each, greedy: about a quarter of the rows end early (EOS), so output lengths are
mixed too. Each side is one `generate` call over every row. The reference is what a job with
`batch_size=8` did before: one call per 8 rows in arrival order, each padded to its longest
prompt and run until its longest output ends. Figures: output tokens per second (target for
grouped batches: at least 1.3x the arrival-order batches), with the same outputs on every side
(checked), and the share of the positions computed that were padding (prompts padded to their
batch's longest, steps run after a row's EOS), as `TransformersLLM` reports it in each
output's `statistics["padding_tokens"]` and a job's summary shows it. Continuous batching pads
nothing; on a CPU its scheduling costs more than the padding it saves (it has no target, and
only the full run measures it).

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

from benchmarks._summary import COLUMNS, cells, judge, skipped_row, summary_row
from benchmarks._table import print_table, run_script
from benchmarks._tiny import missing_transformers

__all__ = ["main", "run"]

ROWS = 48
BATCH = 8
MAX_NEW_TOKENS = 48
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
    """Measures grouped and continuous batches against arrival-order ones; returns rows."""
    missing = missing_transformers()
    if missing:
        return [skipped_row("batching", missing, "transformers")]
    import torch

    from distilabel_llm.llm.backends.transformers import TransformersLLM
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
    llms = {
        "grouped": TransformersLLM(path, TextGenerationTask(), batch_size=BATCH, **settings),
        "arrival": TransformersLLM(path, TextGenerationTask(), **settings),
    }
    if not quick:  # no target on a CPU: the quick run spends its time on the one with a target
        llms["continuous"] = TransformersLLM(
            path, TextGenerationTask(), batch_size=BATCH, continuous_batching=True, **settings
        )
    rows = _rows()
    calls = {
        "grouped": lambda: llms["grouped"].generate(rows),
        "arrival": lambda: [
            row
            for start in range(0, ROWS, BATCH)
            for row in llms["arrival"].generate(rows[start : start + BATCH])
        ],
        "continuous": lambda: llms["continuous"].generate(rows),
    }
    calls = {side: call for side, call in calls.items() if side in llms}
    speeds: Dict[str, List[float]] = {side: [] for side in calls}
    made: Dict[str, List[Any]] = {}
    try:
        for llm in llms.values():
            llm.generate(rows[:BATCH])  # loads and warms each
        for index in range(5 if quick else 9):
            order = list(calls)[index % len(calls) :] + list(calls)[: index % len(calls)]
            for side in order:
                start = time.perf_counter()
                outputs = [row[0] for row in calls[side]()]
                tokens = sum(output["statistics"]["output_tokens"] for output in outputs)
                speeds[side].append(tokens / (time.perf_counter() - start))
                made[side] = outputs
            texts = {side: [o["raw_output"] for o in outputs] for side, outputs in made.items()}
            if any(side_texts != texts["arrival"] for side_texts in texts.values()):
                raise RuntimeError("grouped or continuous batches changed the greedy outputs")
    finally:
        for llm in llms.values():
            llm.close()
    lengths = [output["statistics"]["input_tokens"] for output in made["arrival"]]
    ended = sum(o["statistics"]["output_tokens"] < MAX_NEW_TOKENS for o in made["arrival"])
    padding = {side: _padding_share(outputs) for side, outputs in made.items()}
    workload = (
        f"output tokens/s, {ROWS} rows of {min(lengths)}-{max(lengths)} prompt tokens and up to "
        f"{MAX_NEW_TOKENS} new ({ended} end early), tiny transformers llama, against static "
        f"batches of {BATCH} in arrival order"
    )
    grouped = summary_row(
        "batching",
        f"{workload}: batches of {BATCH} grouped by prompt length",
        "tok/s",
        speeds["grouped"],
        reference=speeds["arrival"],
        reference_kind="arrival order",
        target=f">= {TARGET:g}x arrival order",
        note=f"padding: {100 * padding['grouped']:.0f}% of the positions computed grouped, "
        f"{100 * padding['arrival']:.0f}% in arrival order; same greedy outputs",
    )
    judge(grouped, ">=", TARGET)
    if quick:
        return [grouped]
    continuous = summary_row(
        "batching",
        f"{workload}: continuous batching, {BATCH} sequences at once [CPU: no target]",
        "tok/s",
        speeds["continuous"],
        reference=speeds["arrival"],
        reference_kind="arrival order",
        note=f"padding: {100 * padding['continuous']:.0f}%; same greedy outputs",
    )
    return [grouped, continuous]


def print_results(rows: List[Dict[str, Any]]) -> None:
    print_table("Batches grouped by prompt length", COLUMNS, [cells(row) for row in rows])


def main(argv: Optional[List[str]] = None) -> int:
    return run_script(__doc__, run, print_results, argv)


if __name__ == "__main__":
    raise SystemExit(main())
