"""Continuous batching with transformers' `generate_batch`: a sequence that ends makes room
for the next at once, instead of its batch running on until its longest sequence ends.

transformers 5 has it (`model.generate_batch`); it swallows a failed run into a log line and
returns what it has, so every request is checked here and a missing one fails the call, and
it sizes its cache to most of the free memory unless told, so the cache is sized here to the
call's own requests.
"""

from __future__ import annotations

import math
from typing import Any, Dict, List, Optional

from distilabel_llm.llm.backends._static_batching import tokens_before_eos

__all__ = ["available", "generate_continuously", "suits"]

# Tokens a cache page holds; small pages waste little on short sequences.
_PAGE_SIZE = 32
# Prompt tokens at most in one forward pass (the longest prompt always fits).
_MAX_BATCH_TOKENS = 2048


def available(model: Any) -> bool:
    """Whether the installed transformers offers continuous batching for `model`."""
    return callable(getattr(model, "generate_batch", None))


def suits(settings: Dict[str, Any], sampling: Dict[str, Any], structured: Any) -> bool:
    """Whether a call with these settings can run with continuous batching.

    It cannot honour a structured output or stop strings (it has neither), nor a repetition
    penalty (it drops it, with a warning), nor a seed (all requests draw from one stream, so a
    row's samples could not be reproduced): such calls run in static batches.
    """
    seeded = sampling["do_sample"] and settings.get("seed") is not None
    return not (
        structured is not None or settings.get("stop") or "repetition_penalty" in sampling or seeded
    )


def generate_continuously(
    model: Any,
    encoded: List[List[int]],
    sequences_per_prompt: int,
    max_new_tokens: int,
    sampling: Dict[str, Any],
    eos_ids: List[int],
    pad_id: int,
    max_requests: Optional[int],
) -> List[List[int]]:
    """The new tokens of each sequence up to its EOS, `sequences_per_prompt` for each prompt
    of `encoded` (a prompt's sequences together, in prompt order).

    Args:
        max_requests: sequences decoded at once (the LLM's `batch_size`); None: all of them.

    Raises:
        RuntimeError: if transformers returned no tokens, or an error, for some sequence.
    """
    import torch
    from transformers import GenerationConfig
    from transformers.generation.configuration_utils import ContinuousBatchingConfig

    requests = len(encoded) * sequences_per_prompt
    at_once = min(max_requests or requests, requests)
    # Room for the longest sequences that can run at once, and a page to spare for each.
    pages = sorted(
        (
            math.ceil((len(ids) + max_new_tokens) / _PAGE_SIZE)
            for ids in encoded
            for _ in range(sequences_per_prompt)
        ),
        reverse=True,
    )
    longest = max(len(ids) for ids in encoded)
    cache = ContinuousBatchingConfig(
        page_size=_PAGE_SIZE,
        num_blocks=sum(pages[:at_once]) + at_once,
        max_batch_tokens=max(longest + 1, _MAX_BATCH_TOKENS),
        max_requests_per_batch=at_once,
    )
    config = GenerationConfig(
        max_new_tokens=max_new_tokens,
        num_return_sequences=sequences_per_prompt,
        eos_token_id=eos_ids or None,
        pad_token_id=pad_id,
        **sampling,
    )
    with torch.inference_mode():
        results = model.generate_batch(
            encoded, generation_config=config, continuous_batching_config=cache, progress_bar=False
        )
    # In prompt order, each prompt's sequences together (its extra ones, then itself).
    outputs = list(results.values())
    failed = [output for output in outputs if output.error is not None]
    if len(outputs) != requests or failed:
        reason = failed[0].error if failed else "the generation loop stopped early"
        raise RuntimeError(
            f"Continuous batching returned {len(outputs) - len(failed)} of {requests} "
            f"sequences ({reason}); pass continuous_batching=False to use static batches."
        )
    return [
        list(output.generated_tokens[: tokens_before_eos(output.generated_tokens, eos_ids)])
        for output in outputs
    ]
