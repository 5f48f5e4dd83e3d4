"""What `AsyncLLM`'s retry loop decides with: which failures may pass, how long to back off,
and how a request's retries went, for its error message."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from typing import Optional

__all__ = ["GaveUp", "Retries", "Transient", "backoff", "is_transient_by_default"]

_FIRST_BACKOFF_S = 0.5
_MAX_BACKOFF_S = 8.0


@dataclass(frozen=True)
class Transient:
    """A failure that may pass: the same request may succeed later, or elsewhere.

    Args:
        rate_limited: a 429: the server wants fewer requests, so fewer go in flight.
        retry_after: the seconds the server asked to wait (`Retry-After`), if it did.
    """

    rate_limited: bool = False
    retry_after: Optional[float] = None


@dataclass(frozen=True)
class Retries:
    """How a failed request's retries went.

    Args:
        made: the retries made.
        allowed: the LLM's `max_retries`.
        refused_wait: the wait the server asked for, when it was longer than is honoured and so
            ended the retries early.
    """

    made: int
    allowed: int
    refused_wait: Optional[float] = None


class GaveUp(Exception):
    """The retry loop's last word on a transient failure: `error`, and how the retries went.
    Internal: `AsyncLLM` unwraps it before anything is raised or reported."""

    def __init__(self, error: Exception, retries: Retries) -> None:
        super().__init__(str(error))
        self.error = error
        self.retries = retries


def backoff(retry: int) -> float:
    """Seconds to wait before retry number `retry` (1, 2, ...) when the server named no wait:
    0.5 s doubling to at most 8 s, less up to a quarter at random so that requests refused
    together do not come back together."""
    seconds = min(_FIRST_BACKOFF_S * 2 ** (retry - 1), _MAX_BACKOFF_S)
    return seconds * (1 - 0.25 * random.random())


def is_transient_by_default(error: Exception) -> bool:
    """A timeout or a lost connection: what any backend's request may meet and survive."""
    return isinstance(error, (TimeoutError, asyncio.TimeoutError, ConnectionError))
