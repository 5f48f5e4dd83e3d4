"""A batch job end to end: `Pipeline` with a checkpoint, against the raw backend's loop.

Both sides generate for the same rows with the kit's tiny transformers llama loaded once in
this process, greedy, in batches of 8, and must produce the same number of tokens. Ours:
`Pipeline(generator=TransformersLLM).generate(rows, batch_size=8, checkpoint=...)`, which
validates the dataset, formats the prompts, writes every finished row to the JSONL checkpoint
and returns the rows with their columns. Raw: the loop a user would write with `transformers`
alone: chat template, left-padded tokenizer, `model.generate`, `batch_decode`, no checkpoint.
Runs alternate (a fresh checkpoint file each run); the ratio is taken run by run. The tiny model
makes each step cheap, so the library's own costs weigh more here than on a real model. Legacy
distilabel 0.6.0 is not compared: its venv has no torch.

Run: `python -m benchmarks.e2e [--quick]` or `python benchmarks/e2e.py [--quick]`.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: import from the repository, not benchmarks/
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import tempfile
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

from benchmarks._summary import COLUMNS, cells, judge, skipped_row, summary_row
from benchmarks._table import print_table, run_script
from benchmarks._tiny import load_tiny_transformers, missing_transformers, rows, tiny_model_path
from distilabel_llm.tasks import TextGenerationTask

__all__ = ["main", "run"]

BATCH_SIZE = 8
MAX_NEW_TOKENS = 32
TARGET_OVERHEAD = 1.05


def _runs(llm: Any, inputs: List[Dict[str, Any]], directory: Path) -> Tuple[Callable, Callable]:
    """Ours and raw, each returning the number of tokens it generated."""
    import torch

    from distilabel_llm.pipeline import Pipeline

    model, tokenizer = llm.model, llm.tokenizer
    tokenizer.padding_side = "left"
    prompts = llm.validate_prompts(inputs)
    eos = tokenizer.eos_token_id
    pipeline = Pipeline(generator=llm)
    runs = iter(range(1_000_000))

    def ours() -> int:
        checkpoint = directory / f"run-{next(runs)}.jsonl"
        done = pipeline.generate(
            inputs, batch_size=BATCH_SIZE, checkpoint=checkpoint, display_progress_bar=False
        )
        if len(done) != len(inputs) or any(row["error"] for row in done):
            raise RuntimeError("the pipeline lost or failed rows")
        return sum(pipeline.stats.output_tokens_by_model.values())

    def raw() -> int:
        tokens = 0
        for start in range(0, len(prompts), BATCH_SIZE):
            batch = prompts[start : start + BATCH_SIZE]
            encoded = tokenizer(batch, add_special_tokens=False, padding=True, return_tensors="pt")
            with torch.inference_mode():
                generated = model.generate(
                    **encoded, max_new_tokens=MAX_NEW_TOKENS, do_sample=False, pad_token_id=eos
                )
            new = generated[:, encoded.input_ids.shape[1] :]
            tokenizer.batch_decode(new, skip_special_tokens=True)
            # Tokens before EOS, which is not counted (as our statistics count).
            tokens += sum(row.index(eos) if eos in row else len(row) for row in new.tolist())
        return tokens

    return ours, raw


def run(quick: bool = False) -> List[Dict[str, Any]]:
    """Times the job both ways; returns one summary row (seconds)."""
    count, pairs = (32, 3) if quick else (128, 5)
    workload = (
        f"Pipeline job with checkpoint, {count} rows, batch {BATCH_SIZE}, tiny transformers llama"
    )
    if missing_transformers():
        return [skipped_row("e2e", missing_transformers(), workload)]
    import torch

    threads = torch.get_num_threads()
    llm = load_tiny_transformers(
        TextGenerationTask(),
        path=tiny_model_path(),
        max_new_tokens=MAX_NEW_TOKENS,
        torch_threads=None,
    )
    inputs = rows(count)
    with tempfile.TemporaryDirectory() as directory:
        ours, raw = _runs(llm, inputs, Path(directory))
        tokens = {ours(), raw()}  # warm-up, and the work both must do
        if len(tokens) != 1:
            raise RuntimeError(f"ours and raw generated different token counts: {tokens}")
        samples: Dict[Callable, List[float]] = {ours: [], raw: []}
        for index in range(pairs):
            for fn in (ours, raw) if index % 2 == 0 else (raw, ours):
                start = time.perf_counter()
                fn()
                samples[fn].append(time.perf_counter() - start)
    row = summary_row(
        "e2e",
        workload,
        "s",
        samples[ours],
        reference=samples[raw],
        reference_kind="raw loop",
        target=f"<= {TARGET_OVERHEAD:.2f}x raw",
        tokens=tokens.pop(),
        torch_threads=threads,
    )
    judge(row, "<=", TARGET_OVERHEAD)
    return [row]


def print_results(rows: List[Dict[str, Any]]) -> None:
    print_table("Batch job end to end", COLUMNS, [cells(row) for row in rows])


def main(argv: Optional[List[str]] = None) -> int:
    return run_script(__doc__, run, print_results, argv)


if __name__ == "__main__":
    raise SystemExit(main())
