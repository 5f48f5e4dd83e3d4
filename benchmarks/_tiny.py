"""The kit's tiny transformers llama, as benchmarks load it in child processes and in place.

Loaders here are module-level functions bound with `functools.partial`, so `ProcessLLM`
children import them by name (the parent's `sys.path` reaches the child) instead of
unpickling closures.
"""

from __future__ import annotations

import functools
import importlib.util
from typing import Any, Callable, Dict, List, Optional

from distilabel_llm.tasks import Task

__all__ = [
    "ONE_THREAD_ENV",
    "PROMPTS",
    "load_fake",
    "load_tiny_transformers",
    "load_wide_llama",
    "long_rows",
    "missing_transformers",
    "rows",
    "tiny_loader",
    "tiny_model_path",
    "wide_loader",
]

# One compute thread per process: the scaling benchmark wants one core per replica, and the
# others do not want replicas fighting over both cores.
ONE_THREAD_ENV: Dict[str, str] = {
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "TOKENIZERS_PARALLELISM": "false",
}

PROMPTS = (
    "Write a short poem about the sea.",
    "Explain why the sky is blue.",
    "Give three ideas for a dinner party.",
    "Summarize the text below in one sentence.",
    "What is the capital of France?",
    "How many days are in a week?",
    "Rate each answer from 1 to 10.",
    "Name three colors.",
)


def rows(count: int) -> List[Dict[str, str]]:
    """`count` distinct input rows for a `TextGenerationTask`."""
    return [{"input": f"{PROMPTS[i % len(PROMPTS)]} ({i})"} for i in range(count)]


def missing_transformers() -> Optional[str]:
    """Why the tiny transformers model cannot run here, or None when it can."""
    missing = [name for name in ("torch", "transformers") if importlib.util.find_spec(name) is None]
    if missing:
        return f"{', '.join(missing)} not installed (pip install 'distilabel_llm[transformers]')"
    return None


@functools.cache
def tiny_model_path() -> str:
    """The tiny llama's directory, built once into the kit's cache (seconds, offline)."""
    from distilabel_llm.testing import ensure_tiny_models

    return str(ensure_tiny_models().hf_path)


def load_tiny_transformers(
    task: Task,
    *,
    path: str,
    max_new_tokens: int,
    torch_threads: Optional[int] = 1,
    fixed_length: bool = False,
) -> Any:
    """Loads the tiny llama as a `TransformersLLM`.

    Args:
        task: the task the `ProcessLLM` passes in.
        path: `tiny_model_path()`.
        max_new_tokens: the generation length.
        torch_threads: `torch.set_num_threads` (None: leave torch's default).
        fixed_length: make every generation exactly `max_new_tokens` long (no early EOS), so
            every unit of work costs the same.
    """
    import torch

    from distilabel_llm.llm.backends.transformers import TransformersLLM

    if torch_threads is not None:
        torch.set_num_threads(torch_threads)
    llm = TransformersLLM.from_pretrained(path, task, max_new_tokens=max_new_tokens)
    if fixed_length:
        llm.model.generation_config.min_new_tokens = max_new_tokens
    return llm


def tiny_loader(max_new_tokens: int, **kwargs: Any) -> Callable[[Task], Any]:
    """A `load_llm_fn` for `ProcessLLM` that loads the tiny llama (see `load_tiny_transformers`)."""
    return functools.partial(
        load_tiny_transformers, path=tiny_model_path(), max_new_tokens=max_new_tokens, **kwargs
    )


def long_rows(count: int) -> List[Dict[str, str]]:
    """`count` distinct rows whose prompts are ~475 tokens long for the kit's tokenizer."""
    text = " ".join(PROMPTS) * 3
    return [{"input": f"{text} ({i})"} for i in range(count)]


def load_wide_llama(
    task: Task,
    *,
    path: str,
    hidden_size: int = 512,
    intermediate_size: int = 1408,
    layers: int = 6,
    max_new_tokens: int = 4,
    torch_threads: int = 1,
) -> Any:
    """The tiny llama widened to a compute-bound size, with seeded random weights.

    The kit's llama is so small that per-step Python overhead dominates its cost, so batching
    two rows costs barely more than one; this one (kit tokenizer and config, wider layers) on
    `long_rows` prompts spends its time in matrix products, so a row costs the same whether it
    runs alone or batched: the right model for measuring how processes scale.
    """
    import torch
    import transformers

    from distilabel_llm.llm.backends.transformers import TransformersLLM

    torch.set_num_threads(torch_threads)
    config = transformers.AutoConfig.from_pretrained(path)
    config.hidden_size = hidden_size
    config.intermediate_size = intermediate_size
    config.num_hidden_layers = layers
    config.num_attention_heads = 8
    config.num_key_value_heads = 4
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(config).eval()
    model.generation_config.min_new_tokens = max_new_tokens  # every row costs the same
    tokenizer = transformers.AutoTokenizer.from_pretrained(path)
    return TransformersLLM(model, tokenizer, task, max_new_tokens=max_new_tokens)


def wide_loader(**kwargs: Any) -> Callable[[Task], Any]:
    """A `load_llm_fn` for `ProcessLLM` that builds the widened llama (`load_wide_llama`)."""
    return functools.partial(load_wide_llama, path=tiny_model_path(), **kwargs)


def load_fake(task: Task) -> Any:
    """A no-op `FakeLLM`: what the library costs with no model at all."""
    from distilabel_llm.testing import FakeLLM

    return FakeLLM(task)
