"""Keeping an `AsyncLLM` within a server's limits.

Three things decide when a request may go, all kept by one `RateLimiter` per LLM and shared by
every call and thread of it:

- pacing: requests and tokens per minute (configured, or learnt from the server's
  `x-ratelimit-*` headers), spent evenly instead of in bursts that the server would bounce;
- the window: how many requests may be in flight, halved by a 429 (once per burst of them) and
  grown back by one for each window's worth of successes;
- pauses: a `Retry-After`, or a limit the server says is spent, holds every sender, not only the
  request that met it.

The limiter's methods run on the LLM's event loop only, so its state needs no lock. Time is
`time.monotonic`; waiting is an asyncio wait on that loop, woken early when the state changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import logging
import math
import re
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple, Union

__all__ = [
    "MAX_PAUSE_S",
    "PACING",
    "RateLimiter",
    "Ticket",
    "estimate_tokens",
    "parse_duration",
    "retry_after_seconds",
]

logger = logging.getLogger("distilabel_llm")

PACING = 0.95
"""The share of a per-minute limit that requests are paced at: the rest absorbs the jitter
between our clock and the server's, so that a job paced at its limit is not bounced at the edge
of the server's window."""

MAX_PAUSE_S = 60.0
"""The longest wait a server may ask for (`Retry-After`, a spent limit's reset) that is
honoured; a request asked to wait longer fails at once, as a transient failure."""

_CUT = 0.5  # a burst of 429s halves the requests in flight
# The share of its interval by which a request's lateness is made up by the next one: in any
# window of T seconds at most (T / interval + 1.25) requests go. Not for tokens: a request's
# reservation is corrected after it, so its interval is not known when it goes.
_CATCH_UP = {"requests": 0.25, "tokens": 0.0}
_KINDS = ("requests", "tokens")
# Per chat message, and for the answer's priming: what OpenAI's chat format adds to the text.
_MESSAGE_TOKENS = 4
_PRIMING_TOKENS = 3
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ms|h|m|s)")
_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


class _Pacer:
    """Spends one resource (requests or tokens) at `PACING` of `per_minute`, evenly: a cost may go
    once every earlier cost is paid for at that rate. A cost that went late (a timer fires a
    little after its time) is made up by the next, up to `catch_up` of its interval; beyond
    that, idle time saves nothing up, so no burst follows a quiet spell."""

    def __init__(self, per_minute: float, catch_up: float = 0.0) -> None:
        self.per_minute = per_minute
        self._catch_up = catch_up
        self._next = -math.inf  # when the next cost may go

    def _per_second(self) -> float:
        return self.per_minute * PACING / 60.0

    def wait(self, now: float) -> float:
        """Seconds until a cost may go."""
        return max(0.0, self._next - now)

    def spend(self, cost: float, now: float) -> None:
        interval = cost / self._per_second()
        self._next = max(self._next, now - self._catch_up * interval) + interval

    def correct(self, extra: float) -> None:
        """Moves the next cost's time by `extra` of the resource (negative: a refund)."""
        self._next += extra / self._per_second()


class _Window:
    """How many requests may be in flight: at most `ceiling` (unbounded if None), halved by a
    429, grown again by one for each window's worth of successes."""

    def __init__(self, ceiling: Optional[int]) -> None:
        self.ceiling = math.inf if ceiling is None else float(ceiling)
        self.size = self.ceiling
        self.in_flight = 0
        self._cut_at = -math.inf

    def has_room(self) -> bool:
        if math.isinf(self.size):
            return True
        return self.in_flight < max(1, math.floor(self.size))

    def cut(self, sent_at: float, now: float) -> bool:
        """Halves the window for a 429, unless the refused request went before the last cut:
        then it belongs to the burst that cut already answered. Returns whether it cut."""
        if sent_at < self._cut_at:
            return False
        self.size = max(1.0, math.floor(min(self.size, self.in_flight) * _CUT))
        self._cut_at = now
        return True

    def grow(self) -> None:
        self.size = min(self.ceiling, self.size + 1.0 / self.size)


@dataclass
class Ticket:
    """One admitted request: the tokens it reserved and when it went."""

    tokens: int
    sent_at: float
    open: bool = True


class RateLimiter:
    """The limits of one LLM, shared by all its calls; see the module's docstring.

    Args:
        requests_per_minute: the most requests to send in a minute; None: no limit of ours
            (one the server states in its headers still counts).
        tokens_per_minute: the most tokens (prompt and answer) in a minute; None as above.
        max_concurrency: the most requests in flight; None: no bound but what 429s teach.
        clock: seconds of a monotonic clock.
    """

    def __init__(
        self,
        requests_per_minute: Optional[float] = None,
        tokens_per_minute: Optional[float] = None,
        max_concurrency: Optional[int] = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._configured = {"requests": requests_per_minute, "tokens": tokens_per_minute}
        self._learnt: Dict[str, float] = {}
        self._pacers: Dict[str, _Pacer] = {
            kind: _Pacer(limit, _CATCH_UP[kind])
            for kind, limit in self._configured.items()
            if limit
        }
        self._window = _Window(max_concurrency)
        self._paused_until = -math.inf
        self._clock = clock
        self.rate_limited = 0
        """429s met so far."""
        # Made on the LLM's loop, at first use: on Python 3.9 they bind to a loop when made.
        self._turn: Optional[asyncio.Lock] = None
        self._changed: Optional[asyncio.Event] = None

    # What it holds now.

    def limit(self, kind: str) -> Optional[float]:
        """The per-minute limit in force for "requests" or "tokens": ours or the server's,
        whichever is lower; None when neither is known."""
        known = [value for value in (self._configured[kind], self._learnt.get(kind)) if value]
        return min(known) if known else None

    @property
    def concurrency(self) -> float:
        """The most requests that may be in flight now (`inf`: no bound)."""
        return self._window.size

    @property
    def in_flight(self) -> int:
        return self._window.in_flight

    def delay(self, tokens: int, now: float) -> float:
        """Seconds until a request reserving `tokens` may go, leaving the window aside."""
        waits = [self._paused_until - now]
        if "requests" in self._pacers:
            waits.append(self._pacers["requests"].wait(now))
        if tokens and "tokens" in self._pacers:
            waits.append(self._pacers["tokens"].wait(now))
        return max(0.0, *waits)

    # A request's life.

    async def admit(self, tokens: int) -> Ticket:
        """Waits until a request reserving `tokens` may go, and counts it as gone.

        Requests are admitted one at a time in arrival order (an asyncio lock is fair), so that
        a long wait at the head cannot be overtaken and the pace holds across calls.
        """
        turn, changed = self._primitives()
        async with turn:
            while True:
                now = self._clock()
                delay = self.delay(tokens, now)
                if delay <= 0 and self._window.has_room():
                    break
                changed.clear()
                # Woken early by a change: a refund, a freed slot, a limit learnt.
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(changed.wait(), delay if delay > 0 else None)
            for kind, cost in (("requests", 1), ("tokens", tokens)):
                if kind in self._pacers and cost:
                    self._pacers[kind].spend(cost, now)
            self._window.in_flight += 1
            return Ticket(tokens, now)

    def succeeded(self, ticket: Ticket, tokens_used: Optional[int]) -> None:
        """Ends `ticket` with an answer; `tokens_used` (from the answer's usage) corrects the
        reservation."""
        if not self._close(ticket):
            return
        self._window.grow()
        if tokens_used is not None and "tokens" in self._pacers:
            self._pacers["tokens"].correct(tokens_used - ticket.tokens)
        self._notify()

    def failed(
        self, ticket: Ticket, rate_limited: bool = False, retry_after: Optional[float] = None
    ) -> None:
        """Ends `ticket` with no answer: its tokens are given back; a 429 (`rate_limited`) cuts
        the window; a `retry_after` up to `MAX_PAUSE_S` pauses every sender that long."""
        if not ticket.open:
            return
        now = self._clock()
        if rate_limited:
            self.rate_limited += 1
            if self._window.cut(ticket.sent_at, now):
                logger.info(
                    "Rate limited (429): at most %g requests in flight from now on.",
                    self._window.size,
                )
        if retry_after is not None and 0 < retry_after <= MAX_PAUSE_S:
            self.pause_until(now + retry_after)
        self.released(ticket)

    def released(self, ticket: Ticket) -> None:
        """Ends `ticket` without an answer (cancelled, or no tokens spent): gives them back."""
        if not self._close(ticket):
            return
        if "tokens" in self._pacers and ticket.tokens:
            self._pacers["tokens"].correct(-ticket.tokens)
        self._notify()

    # What the server says.

    def pause_until(self, until: float) -> None:
        """Holds every request until the monotonic time `until`."""
        if until > self._paused_until:
            self._paused_until = until

    def learn(self, headers: Mapping[str, str]) -> None:
        """Takes the limits a response's `x-ratelimit-*` headers state (OpenAI's names): the
        per-minute limits, and a pause when the server says one is spent."""
        now = self._clock()
        for kind in _KINDS:
            limit = _number(headers.get(f"x-ratelimit-limit-{kind}"))
            if limit and limit > 0 and limit != self._learnt.get(kind):
                self._learnt[kind] = limit
                self._repace(kind)
            remaining = _number(headers.get(f"x-ratelimit-remaining-{kind}"))
            reset = parse_duration(headers.get(f"x-ratelimit-reset-{kind}"))
            if remaining is None or remaining >= 1 or reset is None:
                continue
            # The reset is when the limit is whole again; one more request is due sooner, one
            # request's share of a minute after the last (the server refuses with a
            # `Retry-After` if it is not).
            per_minute = self.limit(kind)
            if kind == "requests" and per_minute:
                reset = min(reset, 60.0 / per_minute)
            self.pause_until(now + min(reset, MAX_PAUSE_S))
        self._notify()

    def _repace(self, kind: str) -> None:
        limit = self.limit(kind)
        assert limit is not None
        if kind in self._pacers:
            self._pacers[kind].per_minute = limit
        else:
            self._pacers[kind] = _Pacer(limit, _CATCH_UP[kind])
        logger.debug(
            "Pacing %s at %g a minute (ours: %s; the server's: %s).",
            kind,
            limit,
            self._configured[kind],
            self._learnt.get(kind),
        )

    # Plumbing.

    def _close(self, ticket: Ticket) -> bool:
        if not ticket.open:
            return False
        ticket.open = False
        self._window.in_flight -= 1
        return True

    def _primitives(self) -> Tuple[asyncio.Lock, asyncio.Event]:
        if self._turn is None or self._changed is None:
            self._turn, self._changed = asyncio.Lock(), asyncio.Event()
        return self._turn, self._changed

    def _notify(self) -> None:
        if self._changed is not None:
            self._changed.set()


def estimate_tokens(prompt: Union[str, List[Dict[str, Any]]]) -> int:
    """An estimate of `prompt`'s tokens, made without its tokenizer, for pacing: one per 3
    UTF-8 bytes, rounded up (tokenizers average about 4 on English text), plus 4 per chat
    message and 3 for the answer's priming, as OpenAI's chat format adds. A string counts as
    one message. The response's `usage` corrects it; a budget, which nothing corrects before
    the money is spent, reserves `core.cost.prompt_tokens_bound` instead."""
    messages = [{"content": prompt}] if isinstance(prompt, str) else prompt
    text_tokens = sum(
        math.ceil(len(str(message.get("content") or "").encode("utf-8")) / 3)
        for message in messages
    )
    return text_tokens + _MESSAGE_TOKENS * len(messages) + _PRIMING_TOKENS


def parse_duration(value: Optional[str]) -> Optional[float]:
    """Seconds in a duration as OpenAI writes them ("1s", "6m0s", "59.5s", "20ms") or a bare
    number of seconds; None when there is none or it cannot be read."""
    if value is None:
        return None
    text = str(value).strip()
    try:
        seconds = float(text)
    except ValueError:
        parts = _DURATION_PART.findall(text)
        if not parts or "".join(number + unit for number, unit in parts) != text:
            return None
        seconds = sum(float(number) * _SECONDS[unit] for number, unit in parts)
    return max(0.0, seconds) if math.isfinite(seconds) else None


def retry_after_seconds(headers: Mapping[str, str]) -> Optional[float]:
    """The wait a response asks for: `retry-after-ms`, else `Retry-After` in seconds or as an
    HTTP date; `inf` for one too large to be a number; None without one."""
    for name, unit in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) / unit
        except ValueError:
            seconds = _until_http_date(value)
            if seconds is None:
                continue
        if math.isnan(seconds):
            continue
        return max(0.0, seconds)
    return None


def _until_http_date(value: str) -> Optional[float]:
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return when.timestamp() - time.time()


def _number(value: Any) -> Optional[float]:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None
