"""What generating costs: a model's prices, a job's budget, and the worst case of a call.

Prices are the user's, per model: there is no table of them here to go stale, and a model
without prices has an unknown cost (None), never a cost of 0. A budget is spent by reserving a
request's worst case before it is sent and settling it with what it cost once it returns, so
that requests in flight together can never take more than the budget between them.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Any, Dict, Iterable, Optional, Sequence, Union

__all__ = ["Budget", "Prices", "format_usd", "max_call_cost", "prompt_tokens_bound"]

# Chat templates wrap each message in role markers and separators, and prime the reply: a
# bound on what any common template adds (OpenAI's adds 3 a message and 3 a reply).
_TOKENS_PER_MESSAGE = 8
_TOKENS_PER_PROMPT = 8
_PER_MILLION = 1_000_000


@dataclass(frozen=True)
class Prices:
    """A model's prices, in USD per million tokens.

    Args:
        input_per_million: the price of a million prompt tokens.
        output_per_million: the price of a million generated tokens.

    Raises:
        ValueError: for a price that is not a finite number, 0 or more.
    """

    input_per_million: float
    output_per_million: float

    def __post_init__(self) -> None:
        for name in ("input_per_million", "output_per_million"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"`{name}` must be a number of USD, not {value!r}.")
            if not 0 <= value < math.inf:  # NaN fails both
                raise ValueError(f"`{name}` must be a finite price, 0 or more, not {value!r}.")

    @classmethod
    def from_arguments(
        cls, input_cost: Optional[float], output_cost: Optional[float]
    ) -> Optional[Prices]:
        """The prices an LLM was given as `input_cost_per_million_tokens` and
        `output_cost_per_million_tokens`; None when neither was.

        Raises:
            ValueError: when only one was given, or one is not a price.
        """
        if input_cost is None and output_cost is None:
            return None
        if input_cost is None or output_cost is None:
            raise ValueError(
                "Give both `input_cost_per_million_tokens` and `output_cost_per_million_tokens` "
                "(0 for a kind of token that is free), or neither: with one alone the cost of a "
                "generation would be half known."
            )
        return cls(input_cost, output_cost)

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        """The USD cost of `input_tokens` prompt tokens and `output_tokens` generated ones."""
        return (
            input_tokens * self.input_per_million + output_tokens * self.output_per_million
        ) / _PER_MILLION


class Budget:
    """A limit on spending, shared by requests in flight together (thread-safe).

    Reserve a request's worst case before sending it (`reserve`), and settle the reservation
    with what it cost once it returns (`settle`). A reservation is refused when it would take
    what is spent and reserved past the limit, so requests in flight together cannot overshoot
    it, however they return.

    Args:
        limit: the most USD to spend.

    Raises:
        ValueError: for a limit that is not a positive finite number.
    """

    def __init__(self, limit: float) -> None:
        if isinstance(limit, bool) or not isinstance(limit, (int, float)):
            raise ValueError(f"A budget must be a number of USD, not {limit!r}.")
        if not 0 < limit < math.inf:
            raise ValueError(f"A budget must be a positive, finite number of USD, not {limit!r}.")
        self.limit = float(limit)
        self._spent = 0.0
        self._reserved = 0.0
        self._lock = threading.Lock()

    @property
    def spent(self) -> float:
        """USD spent by the requests settled so far."""
        return self._spent

    @property
    def reserved(self) -> float:
        """USD reserved for the requests in flight."""
        return self._reserved

    @property
    def remaining(self) -> float:
        """USD neither spent nor reserved."""
        with self._lock:
            return max(self.limit - self._spent - self._reserved, 0.0)

    def reserve(self, amount: float) -> bool:
        """Reserves `amount` USD, unless that would go past the limit; returns whether it did."""
        if amount < 0:
            raise ValueError(f"Cannot reserve a negative amount ({amount!r} USD).")
        with self._lock:
            if self._spent + self._reserved + amount > self.limit:
                return False
            self._reserved += amount
            return True

    def settle(self, reserved: float, actual: float) -> None:
        """Releases a reservation of `reserved` USD and counts `actual` USD as spent."""
        with self._lock:
            self._reserved = max(self._reserved - reserved, 0.0)
            self._spent += actual


def prompt_tokens_bound(prompt: Union[str, Sequence[Dict[str, Any]]]) -> int:
    """A bound on the tokens of a prompt not sent yet, without its model's tokenizer.

    Byte-level tokenizers (GPT's, Llama's, Qwen's, Mistral's byte fallback) never make more
    tokens than the text has UTF-8 bytes, so the bytes bound the text however it tokenizes;
    each chat message adds its template's markers. English text runs about 4 bytes a token, so
    this is about 4 times the truth there: what it buys is a bound that holds for any text.
    """
    if isinstance(prompt, str):
        return _utf8_bytes(prompt) + _TOKENS_PER_PROMPT
    tokens = _TOKENS_PER_PROMPT
    for message in prompt:
        tokens += _TOKENS_PER_MESSAGE + sum(_utf8_bytes(str(v)) for v in message.values())
    return tokens


def max_call_cost(
    prices: Prices,
    prompts: Iterable[Union[str, Sequence[Dict[str, Any]]]],
    num_generations: int,
    max_new_tokens: int,
) -> float:
    """The most a call can cost: each generation of each prompt at its prompt's bound and
    `max_new_tokens` generated. Each generation counts its prompt, as its statistics do."""
    bounds = [prompt_tokens_bound(prompt) for prompt in prompts]
    return num_generations * prices.cost(sum(bounds), len(bounds) * max_new_tokens)


def _utf8_bytes(text: str) -> int:
    return len(text.encode("utf-8", errors="surrogatepass"))


def format_usd(amount: float) -> str:
    """`amount` as USD for people: cents above a dollar, four decimals below one (a single
    request costs fractions of a cent)."""
    return f"${amount:,.2f}" if amount >= 1 else f"${amount:.4f}"
