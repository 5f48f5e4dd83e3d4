"""Static batches for `TransformersLLM`: prompts grouped by length, left-padded, decoded in one
`model.generate` until the batch's longest output ends."""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

__all__ = ["generate_padded", "length_groups", "tokens_before_eos"]


def length_groups(encoded: List[List[int]], batch_size: Optional[int]) -> List[List[int]]:
    """Positions of `encoded` in batches of at most `batch_size`, shortest prompts first, so
    that each batch pads to a length close to all of its prompts'."""
    if batch_size is None or len(encoded) <= batch_size:
        return [list(range(len(encoded)))]
    by_length = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
    return [by_length[i : i + batch_size] for i in range(0, len(by_length), batch_size)]


def generate_padded(
    model: Any,
    encoded: List[List[int]],
    sequences_per_prompt: int,
    max_new_tokens: int,
    sampling: Dict[str, Any],
    eos_ids: List[int],
    pad_id: int,
) -> Tuple[List[List[int]], List[int]]:
    """One batch: the new tokens of each sequence up to its EOS (a prompt's sequences
    together, in prompt order), and the positions each computed beyond its own (its padding)."""
    import torch  # the transformers extra's; this module imports without it

    width = max(len(ids) for ids in encoded)
    input_ids = torch.tensor([[pad_id] * (width - len(ids)) + ids for ids in encoded])
    attention_mask = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in encoded])
    with torch.inference_mode():
        generated = model.generate(
            input_ids=input_ids.to(model.device),
            attention_mask=attention_mask.to(model.device),
            max_new_tokens=max_new_tokens,
            num_return_sequences=sequences_per_prompt,
            pad_token_id=pad_id,
            eos_token_id=eos_ids or None,
            **sampling,
        )
    steps = generated.shape[1] - width
    ended = [
        tokens[: tokens_before_eos(tokens, eos_ids)] for tokens in generated[:, width:].tolist()
    ]
    paddings = [
        # After its EOS (its last useful step) a sequence only waits for the batch's longest.
        width - len(encoded[index // sequences_per_prompt]) + max(0, steps - len(tokens) - 1)
        for index, tokens in enumerate(ended)
    ]
    return ended, paddings


def tokens_before_eos(tokens: List[int], eos_ids: List[int]) -> int:
    """Generated tokens before the first EOS (not counted, as llama.cpp and OpenAI do not)."""
    for position, token in enumerate(tokens):
        if token in eos_ids:
            return position
    return len(tokens)
