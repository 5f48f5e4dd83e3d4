"""The fault server's rate limit (`FaultServer.limit`): a sliding window over the chat requests
it accepted, as strict as a provider's limit can be.

A chat request arriving while the last `window` seconds hold `requests` accepted requests (or
answered `tokens` tokens: prompt and completion words, as the server's `usage` counts them) is
refused with a 429 and, unless told not to, a `Retry-After` of the seconds until the window
admits one more. Refused requests do not count. With `headers`, every chat answer carries
OpenAI's `x-ratelimit-*` headers: the limits per minute (as OpenAI states them), what the window
has left, and the time until it is empty again.
"""

from __future__ import annotations

import collections
import math
import threading
from dataclasses import dataclass
from typing import Deque, Dict, List, Optional, Tuple

__all__ = ["Limit", "WindowLimiter", "accepted_in_windows"]


@dataclass(frozen=True)
class Limit:
    """A rate limit on chat requests.

    Args:
        requests: the most requests accepted in any `window` seconds.
        tokens: the most tokens answered in any `window` seconds; None: no token limit.
        window: the window's length in seconds.
        retry_after: send `Retry-After` with a 429.
        headers: send `x-ratelimit-*` headers with every chat answer, 429s included.
    """

    requests: int
    tokens: Optional[int] = None
    window: float = 1.0
    retry_after: bool = True
    headers: bool = False


class WindowLimiter:
    """Keeps one `Limit`: which requests are accepted, and the headers each answer carries."""

    def __init__(self, limit: Limit) -> None:
        self.limit = limit
        self._accepted: Deque[Tuple[float, int]] = collections.deque()  # (time, tokens)
        self._lock = threading.Lock()

    def admit(self, tokens: int, now: float) -> Tuple[bool, Dict[str, str]]:
        """Whether a request that will answer `tokens` tokens is accepted at `now`, and the
        headers its answer carries."""
        with self._lock:
            while self._accepted and self._accepted[0][0] <= now - self.limit.window:
                self._accepted.popleft()
            wait = self._wait(now)
            accepted = wait <= 0
            if accepted:
                self._accepted.append((now, tokens))
            headers = self._headers(now) if self.limit.headers else {}
            if not accepted and self.limit.retry_after:
                headers["Retry-After"] = f"{math.ceil(wait * 1000) / 1000:.3f}"
            return accepted, headers

    def _wait(self, now: float) -> float:
        """Seconds until the window admits one more request (0 or less: it does now)."""
        window, held = self.limit.window, list(self._accepted)
        waits = [0.0]
        if len(held) >= self.limit.requests:
            waits.append(held[len(held) - self.limit.requests][0] + window - now)
        if self.limit.tokens is not None:
            total = sum(tokens for _, tokens in held)
            for at, tokens in held:  # the oldest leave first
                if total < self.limit.tokens:
                    break
                total -= tokens
                waits.append(at + window - now)
        return max(waits)

    def _headers(self, now: float) -> Dict[str, str]:
        per_minute = 60.0 / self.limit.window
        newest = self._accepted[-1][0] if self._accepted else now - self.limit.window
        empty_in = _duration(newest + self.limit.window - now)
        left = max(0, self.limit.requests - len(self._accepted))
        headers = {
            "x-ratelimit-limit-requests": str(int(self.limit.requests * per_minute)),
            "x-ratelimit-remaining-requests": str(left),
            "x-ratelimit-reset-requests": empty_in,
        }
        if self.limit.tokens is not None:
            used = sum(tokens for _, tokens in self._accepted)
            headers.update(
                {
                    "x-ratelimit-limit-tokens": str(int(self.limit.tokens * per_minute)),
                    "x-ratelimit-remaining-tokens": str(max(0, self.limit.tokens - used)),
                    "x-ratelimit-reset-tokens": empty_in,
                }
            )
        return headers


def _duration(seconds: float) -> str:
    """A duration as OpenAI writes it: "20ms", "1.5s", "1m30s"."""
    seconds = max(0.0, seconds)
    if seconds < 1:
        return f"{math.ceil(seconds * 1000)}ms"
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes)}m{rest:.3f}s" if minutes else f"{rest:.3f}s"


def accepted_in_windows(times: List[float], window: float) -> int:
    """The most of `times` (sorted) that fall in any `window` seconds: what a sliding window
    would have seen."""
    most, start = 0, 0
    for end, at in enumerate(times):
        while times[start] <= at - window:
            start += 1
        most = max(most, end - start + 1)
    return most
