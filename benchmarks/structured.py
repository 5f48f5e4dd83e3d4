"""Structured output: the cost of constrained decoding, and how many outputs validate.

The kit's tiny llama answers 48 rows (temperature 1, 64 new tokens at most) on both local
backends, constrained by a small JSON schema (an integer from 1 to 10 and an enum) and free;
runs alternate. Figures: output tokens per second constrained against free, cut at the
constrained outputs' mean length so that both spend the same share on the prompt (target: at
least 0.8x), and on llama.cpp against raw llama-cpp-python given the same schema as a grammar
(target: at least 0.9x: our part costs nothing); the share of constrained outputs that pass
`json.loads` and `jsonschema` among those not cut off by `max_new_tokens` (target: 100%; free,
the random weights give none). The note gives the grammar's cost per token: fixed, it weighs
far more against the tiny model's very cheap tokens than against a real model's.

Run: `python -m benchmarks.structured [--quick]` or `python benchmarks/structured.py [--quick]`.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: import from the repository, not benchmarks/
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import importlib.util
import json
import statistics
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

from benchmarks._summary import COLUMNS, cells, judge, skipped_row, summary_row
from benchmarks._table import print_table, run_script
from benchmarks._tiny import missing_transformers
from distilabel_llm.tasks import TextGenerationTask

__all__ = ["main", "run"]

SCHEMA = {
    "type": "object",
    "properties": {
        "score": {"type": "integer", "minimum": 1, "maximum": 10},
        "mood": {"type": "string", "enum": ["happy", "sad", "calm"]},
    },
    "required": ["score", "mood"],
    "additionalProperties": False,
}
ROWS = [{"input": f"How do you feel about the number {i}?"} for i in range(48)]
MAX_NEW_TOKENS = 64
RAW_TARGET = 0.9
FREE_TARGET = 0.8


def _llm(backend: str) -> Any:
    from distilabel_llm.testing import ensure_tiny_models

    models = ensure_tiny_models()
    task = TextGenerationTask()
    if backend == "llama.cpp":
        from distilabel_llm.llm.backends.llama_cpp import LlamaCppLLM

        return LlamaCppLLM.from_path(str(models.gguf_path), task, n_ctx=1024, n_threads=1)
    import torch

    from distilabel_llm.llm.backends.transformers import TransformersLLM

    torch.set_num_threads(1)
    return TransformersLLM.from_pretrained(str(models.hf_path), task)


def _run(
    llm: Any, constrained: bool, seed: int, max_new_tokens: int = MAX_NEW_TOKENS
) -> Tuple[float, List[Dict[str, Any]]]:
    """Output tokens per second, and the outputs."""
    settings: Dict[str, Any] = {"temperature": 1.0, "seed": seed, "max_new_tokens": max_new_tokens}
    if constrained:
        settings["structured_output"] = SCHEMA
    start = time.perf_counter()
    rows = llm.generate(ROWS, generation_kwargs=settings)
    elapsed = time.perf_counter() - start
    outputs = [row[0] for row in rows]
    tokens = sum((output.get("statistics") or {}).get("output_tokens", 0) for output in outputs)
    return tokens / elapsed, outputs


def _valid_share(outputs: List[Dict[str, Any]]) -> Tuple[float, int]:
    """Share of the outputs not cut off that validate, and how many were cut off."""
    import jsonschema

    whole = [o for o in outputs if o["statistics"]["output_tokens"] < MAX_NEW_TOKENS]
    valid = 0
    for output in whole:
        try:
            jsonschema.validate(json.loads(output["raw_output"]), SCHEMA)
            valid += 1
        except (ValueError, jsonschema.ValidationError):
            pass
    return (valid / len(whole) if whole else 0.0), len(outputs) - len(whole)


def _raw_llama_cpp(llm: Any) -> Callable[[int], float]:
    """Raw llama-cpp-python, the same schema as its grammar: output tokens per second."""
    import llama_cpp

    grammar = llama_cpp.LlamaGrammar.from_json_schema(json.dumps(SCHEMA), verbose=False)
    prompts = llm.validate_prompts(ROWS)
    defaults = llm.generation_kwargs
    settings = {"max_tokens": MAX_NEW_TOKENS, "temperature": 1.0, "grammar": grammar}
    settings.update(top_p=defaults["top_p"], top_k=defaults["top_k"])
    settings["repeat_penalty"] = defaults["repetition_penalty"]

    def run(seed: int) -> float:
        start = time.perf_counter()
        tokens = sum(
            # Every row with the call's seed, as our backend seeds a row's first slot.
            llm.model.create_completion(prompt, seed=seed, **settings)["usage"]["completion_tokens"]
            for prompt in prompts
        )
        return tokens / (time.perf_counter() - start)

    return run


def _backend_rows(backend: str, repeats: int) -> List[Dict[str, Any]]:
    llm = _llm(backend)
    _, warm = _run(llm, True, 0)  # also compiles the grammar, builds tokenizer views
    # Free outputs as long as the constrained ones (random weights rarely end early), so that
    # both spend the same share of their time on the prompt.
    length = round(statistics.mean(o["statistics"]["output_tokens"] for o in warm))
    raw = _raw_llama_cpp(llm) if backend == "llama.cpp" else None
    if raw is not None:
        raw(0)  # warmed alike: our side's first run above compiled its grammar
    speeds: Dict[str, List[float]] = {"free": [], "constrained": [], "raw": []}
    shares: Dict[str, List[float]] = {"free": [], "constrained": []}
    cut = 0
    for index in range(repeats):
        kinds = ["free", "constrained"] + (["raw"] if raw else [])
        # Alternate the order, so that no kind always runs on a warmer machine.
        for kind in kinds if index % 2 == 0 else reversed(kinds):
            if kind == "raw":
                speeds[kind].append(raw(index + 1))
                continue
            constrained = kind == "constrained"
            speed, outputs = _run(
                llm, constrained, index + 1, MAX_NEW_TOKENS if constrained else length
            )
            share, cut_off = _valid_share(outputs)
            speeds[kind].append(speed)
            shares[kind].append(share)
            cut += cut_off if constrained else 0
    workload = f"{backend}, {len(ROWS)} rows, {MAX_NEW_TOKENS} tokens at most"
    free = statistics.median(speeds["free"])
    per_token = 1e6 * (1 / statistics.median(speeds["constrained"]) - 1 / free)
    rows = [
        summary_row(
            "structured",
            f"output tokens/s constrained by a JSON schema, {workload}",
            "tok/s",
            speeds["constrained"],
            reference=speeds["free"],
            reference_kind="free",
            target=f">= {FREE_TARGET:g}x free",
            note=f"free outputs cut at {length} tokens, as long as constrained ones; "
            f"the grammar costs {per_token:,.0f} µs a token",
        )
    ]
    if raw:
        rows.append(
            summary_row(
                "structured",
                f"output tokens/s constrained, ours against raw llama-cpp-python, {workload}",
                "tok/s",
                speeds["constrained"],
                reference=speeds["raw"],
                reference_kind="raw, same schema",
                target=f">= {RAW_TARGET:g}x raw",
            )
        )
    for row, target in zip(rows, (FREE_TARGET, RAW_TARGET)):
        judge(row, ">=", target)
    share_row = summary_row(
        "structured",
        f"outputs that validate, constrained, of those not cut off, {workload}",
        "% valid",
        [100.0 * share for share in shares["constrained"]],
        target="100%",
        met=min(shares["constrained"]) == 1.0,
        note=f"free: {100.0 * max(shares['free']):.0f}%; cut off: {cut} of {repeats * len(ROWS)}",
    )
    return [*rows, share_row]


def run(quick: bool = False) -> List[Dict[str, Any]]:
    """Measures both local backends; returns summary rows."""
    repeats = 3 if quick else 7
    rows: List[Dict[str, Any]] = []
    for backend, missing in (
        ("llama.cpp", None if importlib.util.find_spec("llama_cpp") else "llama-cpp-python"),
        ("transformers", missing_transformers()),
    ):
        if missing or importlib.util.find_spec("llguidance") is None:
            reason = missing or "no llguidance (pip install 'distilabel_llm[structured]')"
            rows.append(skipped_row("structured", reason, backend))
            continue
        rows.extend(_backend_rows(backend, repeats))
    return rows


def print_results(rows: List[Dict[str, Any]]) -> None:
    print_table("Structured output", COLUMNS, [cells(row) for row in rows])


def main(argv: Optional[List[str]] = None) -> int:
    return run_script(__doc__, run, print_results, argv)


if __name__ == "__main__":
    raise SystemExit(main())
