"""The `generate` command's flags turned into what the models take: their tasks, their
backend options, their prices and the generator's settings."""

from __future__ import annotations

import argparse
from typing import Any, Dict

from distilabel_llm.llm.core.catalogue import check_generation_kwargs

# Flags that shape how requests reach a server, and so only the openai backend takes.
OPENAI_LIMITS = ("max_concurrency", "max_requests_per_minute", "max_tokens_per_minute")


def model_options(
    args: argparse.Namespace, backend: str, role: str = "generator"
) -> Dict[str, Any]:
    """The flags that only one backend takes, for the `role` model, of `backend`."""
    if backend == "transformers" and args.continuous_batching:
        return {"continuous_batching": True}
    if backend != "openai":
        return {}
    options: Dict[str, Any] = prices(args, role)
    for name in OPENAI_LIMITS:
        if getattr(args, name) is not None:
            options[name] = getattr(args, name)
    return options


def prices(args: argparse.Namespace, role: str) -> Dict[str, float]:
    """The `role` model's prices from the flags, as `load_llm` takes them; empty if none.
    A labeller running the generator's model and backend has the generator's by default."""
    prices = {
        f"{kind}_cost_per_million_tokens": getattr(args, f"{kind}_cost_per_million_tokens")
        for kind in ("input", "output")
    }
    if role == "labeller":
        own = {
            name: getattr(args, f"labeller_{name}")
            for name in prices
            if getattr(args, f"labeller_{name}") is not None
        }
        same = (args.labeller_model or args.model) == args.model and (
            args.labeller_backend or args.backend
        ) == args.backend
        prices = own if own or not same else prices
    return {name: value for name, value in prices.items() if value is not None}


def generation_kwargs(args: argparse.Namespace) -> Dict[str, Any]:
    """The generator's settings: --generation-kwargs, then the flags over it; checked."""
    flags = {
        "max_new_tokens": args.max_new_tokens,
        "temperature": args.temperature,
        "top_p": args.top_p,
        "seed": args.seed,
        "stop": args.stop,
        "structured_output": args.json_schema or args.regex,
    }
    chosen = {**args.generation_kwargs, **{k: v for k, v in flags.items() if v is not None}}
    return check_generation_kwargs(chosen, None, "--generation-kwargs")


def task(name: str) -> Any:
    from distilabel_llm.tasks import (
        JudgeLMTask,
        SelfInstructTask,
        TextGenerationTask,
        UltraFeedbackTask,
    )

    tasks = {
        "text-generation": TextGenerationTask,
        "self-instruct": SelfInstructTask,
        "ultrafeedback": UltraFeedbackTask.for_overall_quality,
        "judgelm": JudgeLMTask,
    }
    return tasks[name]()
