"""The record every LLM returns for one generation."""

# No `from __future__ import annotations` here: TypedDict reads `NotRequired` from evaluated
# annotations, and postponed ones would list `statistics` and `error` as required at runtime.
from typing import Any, Dict, List, Optional, Sequence, TypeVar, Union

from typing_extensions import NotRequired, TypedDict


class TokenStatistics(TypedDict, total=False):
    """Token counts reported by a backend for one generation."""

    input_tokens: int
    output_tokens: int
    padding_tokens: int
    """Positions computed for this generation that are neither its prompt nor its output: its
    prompt padded to its batch's longest, and steps run after it ended while its batch went on.
    Only backends that batch report it; distilabel 1.x's statistics leave it out."""
    cost: float
    """USD: `input_tokens` and `output_tokens` at the model's prices, for an LLM given prices
    (`input_cost_per_million_tokens`, `output_cost_per_million_tokens`) whose backend reported
    both counts; absent, never 0, when it is not known. Each generation counts its prompt, so
    where one request made several generations (`n`) and the provider bills the prompt once,
    their sum is above the bill, never below."""


class LLMOutput(TypedDict):
    """One generation: the prompt sent, the raw text back, and the task's parse of it.

    `prompt_used`, `raw_output` and `parsed_output` are `None` when the row was not sent (an
    input missing a key the task needs) or when the backend failed on it, and then `error`
    says why; `parsed_output` is also `None` when the task could not parse `raw_output`.
    """

    model_name: str
    prompt_used: Optional[Union[str, List[Dict[str, str]]]]
    raw_output: Optional[str]
    parsed_output: Optional[Any]  # the task's fields (a dict), or the structured output
    statistics: NotRequired[TokenStatistics]
    error: NotRequired[str]
    transient: NotRequired[bool]
    """With `error`: True when the failure may pass (a rate limit, a server error, a timeout, a
    lost connection), so that the same request may succeed later or elsewhere (a pool sends
    it to another member)."""


class GenerateOutput(TypedDict):
    """One conversation's generations as distilabel 1.x returns them (`generate_outputs`).

    `generations` holds a text per generation, `None` where it failed, and then `errors` says
    why at the same position; `statistics` the token counts, a list per kind (and `cost`, in
    USD, when known).
    """

    generations: List[Optional[str]]
    statistics: Dict[str, List[Any]]
    errors: List[Optional[str]]


T = TypeVar("T")


def merge_responses(responses: Sequence[T], n: int) -> List[List[T]]:
    """Groups a flat list of one row's generations after another back into rows of `n`.

    Example:
        >>> merge_responses(["a0", "a1", "b0", "b1"], n=2)
        [['a0', 'a1'], ['b0', 'b1']]

    Raises:
        ValueError: if `n` is not a positive int, or the list does not split into rows of `n`.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"`n` must be a positive integer, not {n!r}.")
    if len(responses) % n:
        raise ValueError(
            f"{len(responses)} responses do not split into rows of n={n}; pass the number of "
            "generations each row has."
        )
    return [list(responses[start : start + n]) for start in range(0, len(responses), n)]


def token_count(value: Any) -> Optional[int]:
    """`value` if it is a token count (an int, 0 or more, not a bool), else None: a backend's
    count that is not one is left out of the statistics rather than failing the output."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None


def token_counts(outputs: Sequence[LLMOutput]) -> Dict[str, List[Any]]:
    """One row's token counts as distilabel 1.x writes them: `{"input_tokens": [...],
    "output_tokens": [...]}`, one entry per generation (None where the backend reported none),
    and `"cost": [...]` (USD) too when any generation's cost is known."""
    statistics = [output.get("statistics") or {} for output in outputs]
    counts: Dict[str, List[Any]] = {
        "input_tokens": [stats.get("input_tokens") for stats in statistics],
        "output_tokens": [stats.get("output_tokens") for stats in statistics],
    }
    if any("cost" in stats for stats in statistics):
        counts["cost"] = [stats.get("cost") for stats in statistics]
    return counts


def output_tokens(outputs: Sequence[LLMOutput]) -> int:
    """The output tokens the backend reported for `outputs` (0 where it reported none)."""
    return sum((output.get("statistics") or {}).get("output_tokens") or 0 for output in outputs)


def output_cost(output: LLMOutput) -> Optional[float]:
    """The USD cost of one output, if known (see `TokenStatistics.cost`)."""
    return (output.get("statistics") or {}).get("cost")
