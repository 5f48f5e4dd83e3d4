"""Tokens per second of the local backends through distilabel_llm, against the raw libraries.

Both sides run the same prompts with the same settings on the same loaded model (the kit's tiny
llama, built offline), and must produce the same number of tokens:

- transformers: one batch of 8 chat-template prompts, greedy. Ours: `TransformersLLM.generate`.
  Raw: the tokenizer with left padding, `model.generate` under `torch.inference_mode`, and
  `batch_decode` of the new tokens, as a user would write it.
- llama.cpp: 8 prompts one after another, sampled with a fixed seed. Ours:
  `LlamaCppLLM.generate`. Raw: `Llama.create_completion` per prompt.

Runs of ours and raw alternate in pairs. Compute is single-threaded (torch and llama.cpp), and
the overhead is the median over the pairs of ours / raw in wall time, the figure the table
shows (CPU time cannot see time lost waiting on locks or hand-offs, so it could never miss);
alternating pairs share the machine's noise. The target is judged on the pairs' upper
quartile. The tiny model makes every generation step cheap, so any per-call cost of ours weighs
more here than on a real model.
Targets: overhead under 5% (transformers, batch 8) and under 3% (llama.cpp).

Run: `python -m benchmarks.backends [--quick]` or `python benchmarks/backends.py [--quick]`.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: import from the repository, not benchmarks/
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import contextlib
import importlib.util
import statistics
import tempfile
import time
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

from benchmarks._summary import judge
from benchmarks._table import Stats, print_table, run_script
from benchmarks._tiny import PROMPTS
from distilabel_llm.tasks import TextGenerationTask

__all__ = ["main", "run"]

BATCH = 8
TARGETS = {"transformers": 5.0, "llama.cpp": 3.0}

Run = Callable[[], int]  # generates once; returns the number of tokens generated


def _interleaved(ours: Run, raw: Run, repeat: int) -> Tuple[Stats, Stats, float, int]:
    """Times `ours` and `raw` in alternating pairs; checks both generate the same tokens.

    Returns the wall-time stats of each, the median over the pairs of ours / raw in wall time
    (the figure the table shows; CPU time would not see time lost waiting on locks or
    hand-offs), and the tokens.
    """
    tokens = {ours(), raw()}  # warm-up, and the work both must do
    if len(tokens) != 1:
        raise RuntimeError(f"ours and raw generated different token counts: {sorted(tokens)}")
    wall: Dict[Run, List[float]] = {ours: [], raw: []}
    for index in range(repeat):
        for fn in (ours, raw) if index % 2 == 0 else (raw, ours):
            start = time.perf_counter()
            fn()
            wall[fn].append(time.perf_counter() - start)
    ratio = statistics.median(a / b for a, b in zip(wall[ours], wall[raw]))
    return Stats.of(wall[ours]), Stats.of(wall[raw]), ratio, tokens.pop()


def _transformers_runs(models: Any, max_new_tokens: int) -> Tuple[Run, Run]:
    import torch
    import transformers

    from distilabel_llm.llm.backends.transformers import TransformersLLM

    model = transformers.AutoModelForCausalLM.from_pretrained(models.hf_path).eval()
    tokenizer = transformers.AutoTokenizer.from_pretrained(models.hf_path)
    llm = TransformersLLM(model, tokenizer, TextGenerationTask(), max_new_tokens=max_new_tokens)
    rows = [{"input": text} for text in PROMPTS[:BATCH]]
    prompts = llm.validate_prompts(rows)  # the same chat-template text ours sends
    eos = tokenizer.eos_token_id

    def ours() -> int:
        outputs = llm.generate(rows)
        return sum(row[0]["statistics"]["output_tokens"] for row in outputs)

    def raw() -> int:
        # The chat template writes BOS itself, so the tokenizer must not add one.
        encoded = tokenizer(prompts, add_special_tokens=False, padding=True, return_tensors="pt")
        with torch.inference_mode():
            generated = model.generate(
                **encoded, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=eos
            )
        new_tokens = generated[:, encoded.input_ids.shape[1] :]
        tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
        return sum(_length_to_eos(tokens, eos) for tokens in new_tokens.tolist())

    tokenizer.padding_side = "left"
    return ours, raw


def _length_to_eos(tokens: List[int], eos: int) -> int:
    """Tokens before EOS, which is not counted (as our statistics count)."""
    return tokens.index(eos) if eos in tokens else len(tokens)


def _llama_cpp_runs(models: Any, max_new_tokens: int) -> Tuple[Run, Run]:
    import llama_cpp

    from distilabel_llm.llm.backends.llama_cpp import LlamaCppLLM

    model = llama_cpp.Llama(
        model_path=str(models.gguf_path), n_ctx=1024, n_threads=1, verbose=False
    )
    llm = LlamaCppLLM(model, TextGenerationTask(), max_new_tokens=max_new_tokens)
    rows = [{"input": text} for text in PROMPTS[:BATCH]]
    prompts = llm.validate_prompts(rows)
    defaults = llm.generation_kwargs
    settings = {  # our defaults, in llama-cpp-python's names
        "max_tokens": max_new_tokens,
        "temperature": defaults["temperature"],
        "top_p": defaults["top_p"],
        "top_k": defaults["top_k"],
        "repeat_penalty": defaults["repetition_penalty"],
        "seed": defaults["seed"],
    }

    def ours() -> int:
        outputs = llm.generate(rows)
        return sum(row[0]["statistics"]["output_tokens"] for row in outputs)

    def raw() -> int:
        total = 0
        for prompt in prompts:
            response = model.create_completion(prompt, **settings)
            total += response["usage"]["completion_tokens"]
        return total

    return ours, raw


@contextlib.contextmanager
def _single_threaded_torch() -> Iterator[None]:
    if importlib.util.find_spec("torch") is None:
        yield
        return
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


_BACKENDS = {
    "transformers": (("torch", "transformers"), _transformers_runs),
    "llama.cpp": (("llama_cpp",), _llama_cpp_runs),
}


def run(quick: bool = False) -> List[Dict[str, Any]]:
    """Measures each installed backend; returns one dict per backend (medians unless named)."""
    from distilabel_llm.testing import ensure_tiny_models

    repeat = 15 if quick else 31  # the ratio of two ~equal timings is noisy: many pairs
    max_new_tokens = 32 if quick else 64
    results: List[Dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as directory, _single_threaded_torch():
        models = ensure_tiny_models(directory)
        for backend, (packages, make_runs) in _BACKENDS.items():
            row: Dict[str, Any] = {
                "benchmark": "backends",
                "backend": backend,
                "batch": BATCH,
                "max_new_tokens": max_new_tokens,
                "repeat": repeat,
                "target_overhead_pct": TARGETS[backend],
            }
            missing = [name for name in packages if importlib.util.find_spec(name) is None]
            if missing:
                row["skipped"] = f"{', '.join(missing)} not installed"
                results.append(row)
                continue
            ours, raw, ratio, tokens = _interleaved(*make_runs(models, max_new_tokens), repeat)
            ratios = [a / b for a, b in zip(ours.samples, raw.samples)]
            overhead = 100.0 * (ratio - 1.0)
            row.update(
                tokens=tokens,
                ours_tokens_per_s=tokens / ours.median,
                raw_tokens_per_s=tokens / raw.median,
                ours_s=ours.median,
                raw_s=raw.median,
                ours_s_min=ours.min,
                ours_s_max=ours.max,
                raw_s_min=raw.min,
                raw_s_max=raw.max,
                ours_s_samples=list(ours.samples),
                raw_s_samples=list(raw.samples),
                overhead_pct=overhead,
                met=judge(
                    {"ratio_samples": ratios, "ratio": ratio}, "<", 1 + TARGETS[backend] / 100
                )["met"],
            )
            results.append(row)
    return results


def print_results(rows: List[Dict[str, Any]]) -> None:
    """Prints `run`'s results as a table, with the targets in the caption."""
    table = []
    for row in rows:
        if "skipped" in row:
            table.append([row["backend"], *["—"] * 6, f"skipped: {row['skipped']}"])
            continue
        table.append(
            [
                row["backend"],
                row["tokens"],
                f"{row['ours_tokens_per_s']:,.0f}",
                f"{row['raw_tokens_per_s']:,.0f}",
                f"{1e3 * row['ours_s']:.1f} ({1e3 * row['ours_s_min']:.1f})",
                f"{1e3 * row['raw_s']:.1f} ({1e3 * row['raw_s_min']:.1f})",
                f"{row['overhead_pct']:+.1f}%",
                f"< {row['target_overhead_pct']:.0f}%: {'met' if row['met'] else 'MISSED'}",
            ]
        )
    print_table(
        f"Local backends through distilabel_llm vs the raw library (batch of {BATCH} prompts)",
        [
            "backend",
            "tokens",
            "ours tok/s",
            "raw tok/s",
            "ours ms (min)",
            "raw ms (min)",
            "overhead",
            "target",
        ],
        table,
        caption=(
            f"Medians of {rows[0]['repeat']} alternating runs, up to "
            f"{rows[0]['max_new_tokens']} new tokens per prompt, on the kit's tiny llama (CPU, "
            "1 thread). Overhead: median over the run pairs of ours / raw - 1 in wall time, for "
            "the same tokens; met only if the pairs' upper quartile is within the target."
        ),
    )


def main(argv: Optional[List[str]] = None) -> int:
    return run_script(__doc__, run, print_results, argv)


if __name__ == "__main__":
    raise SystemExit(main())
