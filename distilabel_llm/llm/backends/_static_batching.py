"""Static batches for `TransformersLLM`: prompts grouped by length, left-padded, decoded in one
`model.generate` until the batch's longest output ends.

A seeded sampling draws each sequence's tokens from a random generator of its own, seeded from
the seed, the row's prompt and the generation slot (`sequence_seed`), so that a sequence's
samples do not depend on which other sequences share its batch.
"""

from __future__ import annotations

import hashlib
from typing import Any, Dict, List, Optional, Tuple

__all__ = [
    "PerSequenceSampler",
    "generate_padded",
    "length_groups",
    "sequence_seed",
    "tokens_before_eos",
]

# The sampling filters `generate` applies when it samples, in its order; read here from the
# call's settings, else from the model's generation config, as `generate` itself does.
_WARPERS = ("temperature", "top_k", "top_p", "min_p", "typical_p")


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
    seeds: Optional[List[int]] = None,
) -> Tuple[List[List[int]], List[int]]:
    """One batch: the new tokens of each sequence up to its EOS (a prompt's sequences
    together, in prompt order), and the positions each computed beyond its own (its padding).

    Args:
        seeds: with a sampling, one per sequence (a prompt's `sequences_per_prompt` together,
            in prompt order): each sequence samples from its own generator, seeded with it.
    """
    import torch  # the transformers extra's; this module imports without it

    if seeds is not None:
        # One batch row per sequence, each with its own sampler row: `generate` would repeat
        # the prompts itself, but only when it samples, with torch's one shared generator.
        encoded = [ids for ids in encoded for _ in range(sequences_per_prompt)]
        sampling = _seeded(model, sampling, seeds)
        sequences_per_prompt = 1
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


def sequence_seed(seed: int, prompt: str, slot: int) -> int:
    """The seed of the generator that samples generation `slot` of the row whose rendered
    prompt is `prompt`: a stable 64-bit hash (not Python's salted `hash`), the same in every
    process and run, and distinct for distinct (seed, slot, prompt) but for a 2^-64 chance."""
    text = f"{seed}/{slot}/{prompt}".encode("utf-8", "surrogatepass")
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "big")


class PerSequenceSampler:
    """A logits processor that samples each sequence's next token with its own generator and
    returns scores on which greedy decoding picks that token.

    Put last, after the sampling filters, in a `generate` that decodes greedily: the draw of
    step `t` of a sequence is then the `t`-th number of its own generator, whichever sequences
    share its batch. A token is drawn by inverting the cumulative distribution at one uniform
    number, so that each step takes exactly one number from each generator.

    Args:
        seeds: one per sequence of the batch, in batch order.
    """

    def __init__(self, seeds: List[int]) -> None:
        import torch

        # On the CPU: drawing there is cheap and gives the same numbers whatever the device.
        self._generators = [torch.Generator().manual_seed(seed) for seed in seeds]

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        # float64 keeps rounding out of the cumulative sums, where the device has it.
        dtype = torch.float32 if scores.device.type == "mps" else torch.float64
        uniforms = torch.cat(
            [torch.rand(1, generator=generator, dtype=dtype) for generator in self._generators]
        ).to(scores.device)
        cumulative = torch.softmax(scores.to(dtype), dim=-1).cumsum(dim=-1)
        # Scaled by each row's total, which rounding leaves a hair off 1; `right=True` skips
        # the tokens of probability 0 (their cumulative value equals the one before).
        targets = (uniforms * cumulative[:, -1]).unsqueeze(1)
        tokens = torch.searchsorted(cumulative, targets, right=True)
        tokens = tokens.clamp_(max=scores.shape[-1] - 1)
        chosen = torch.full_like(scores, float("-inf"))
        return chosen.scatter_(1, tokens, 0.0)


def _seeded(model: Any, sampling: Dict[str, Any], seeds: List[int]) -> Dict[str, Any]:
    """`model.generate`'s arguments for a sampling with one generator per sequence: greedy
    decoding over the scores of the given logits processors, the sampling filters (which
    `generate` applies only when it samples itself) and a `PerSequenceSampler`."""
    import transformers

    defaults = getattr(model, "generation_config", None)
    value = {name: sampling.get(name, getattr(defaults, name, None)) for name in _WARPERS}
    warpers: List[Any] = []
    # As `generate` builds them: each filter only when it changes anything.
    if value["temperature"] is not None and value["temperature"] != 1.0:
        warpers.append(transformers.TemperatureLogitsWarper(value["temperature"]))
    if value["top_k"]:
        warpers.append(transformers.TopKLogitsWarper(top_k=value["top_k"]))
    if value["top_p"] is not None and value["top_p"] < 1.0:
        warpers.append(transformers.TopPLogitsWarper(top_p=value["top_p"]))
    if value["min_p"] is not None:
        warpers.append(transformers.MinPLogitsWarper(min_p=value["min_p"]))
    if value["typical_p"] is not None and value["typical_p"] < 1.0:
        warpers.append(transformers.TypicalLogitsWarper(mass=value["typical_p"]))
    processors = transformers.LogitsProcessorList(
        [
            *sampling.get("logits_processor", []),
            *warpers,
            PerSequenceSampler(seeds),
        ]
    )
    kept = {k: v for k, v in sampling.items() if k not in (*_WARPERS, "logits_processor")}
    return {**kept, "do_sample": False, "logits_processor": processors}
