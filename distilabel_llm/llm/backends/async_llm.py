"""`AsyncLLM`: an LLM whose backend answers one input at a time with a coroutine.

`generate` stays a plain call: the rows' coroutines run together on the LLM's own event loop,
in a thread of its own, so it works the same from plain code, from inside a running event loop
(a notebook cell) and inside a `ProcessLLM` child or a Ray actor. Every request goes through one
retry loop and the LLM's `RateLimiter` (`_rate_limits.py`), shared by all its calls.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
from abc import abstractmethod
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, ClassVar, Dict, List, Optional, Set, Tuple, Union

from distilabel_llm.llm.backends._rate_limits import MAX_PAUSE_S, RateLimiter, estimate_tokens
from distilabel_llm.llm.backends._retries import (
    GaveUp,
    Retries,
    Transient,
    backoff,
    is_transient_by_default,
)
from distilabel_llm.llm.core._callbacks import report_progress
from distilabel_llm.llm.core.contract import MemberProgressCallback, Outputs, ProgressCallback
from distilabel_llm.llm.core.llm import LLM, PromptFormattingFn
from distilabel_llm.llm.core.outputs import LLMOutput, TokenStatistics, token_count
from distilabel_llm.llm.core.settings import GenerationRequest, GenerationSettings
from distilabel_llm.llm.core.structured import STRUCTURED
from distilabel_llm.tasks.prompt import ChatMessages, Prompt, SupportedFormats
from distilabel_llm.utils.checks import check_positive_int
from distilabel_llm.utils.event_loop import EventLoopThread

if TYPE_CHECKING:
    from distilabel_llm.tasks.base import Task

__all__ = ["AsyncLLM", "AsyncResult", "Retries", "Transient", "agenerate_kwargs"]

logger = logging.getLogger("distilabel_llm")

AsyncResult = Union[List[Optional[str]], Dict[str, Any]]
"""What `agenerate` returns: the texts (`None` for one that failed), or distilabel 1.x's dict:
`{"generations": [...], "statistics": {"input_tokens": [...], "output_tokens": [...]}}`, with
`"errors": [...]` saying why a `None` generation failed."""

# (text, token counts, why the text is missing or unusable) for one generation.
_Generation = Tuple[Optional[str], Optional[TokenStatistics], Optional[str]]


class AsyncLLM(LLM):
    """An LLM whose backend implements `async agenerate(input, num_generations, **settings)`.

    Without a prompt format, prompts reach `agenerate` as chat messages. `generate` runs the
    rows' requests concurrently on the LLM's event loop, at most `max_concurrency` at once
    across every call and thread (`None`: a call's rows one after another). With
    `max_concurrency`, `submit` returns at once and the call runs on the loop beside the others
    (a `Pipeline` keeps enough calls in flight to fill it: `rows_ahead`). A request that
    returns fewer generations than asked is topped up with further requests; a backend that
    cannot make several generations in one request sets `supports_n = False` and gets one
    request per generation. Generation slot `k` of a row is asked for with `seed + k`, so
    samples are distinct and reproducible. A row whose request fails comes back with
    `raw_output=None` and the reason in `error` (the error is raised instead with `fail_fast`),
    and with `transient: True` when the failure may pass (see Retries), so that a pool may send
    the row to another member.

    Limits: requests are paced to `max_requests_per_minute` and `max_tokens_per_minute` (evenly,
    at 95% of each, not in bursts), or to the lower limits a server states in `x-ratelimit-*`
    headers (a backend hands them to `self.limits.learn`). A request reserves its prompt's
    tokens and `max_new_tokens` per generation before it goes; the prompt's are estimated
    without a tokenizer (UTF-8 bytes / 3, rounded up, plus a few per message: an overcount),
    and the answer's token statistics correct the reservation.

    Retries: a failure that `_transient` says may pass (here timeouts and lost connections; a
    backend adds its own, such as HTTP 429 and 5xx) is retried up to `max_retries` times, after
    the wait the server asked for or a backoff of 0.5 s doubling to 8 s. A 429 halves the
    requests in flight, once per burst of them, and successes grow them back by one per
    window's worth; a `Retry-After` pauses every request of the LLM until then (one over 60 s
    ends that request's retries instead).

    Args:
        task: the task that builds prompts and parses outputs; `TextGenerationTask` if None.
        max_concurrency: the most requests in flight at once.
        fail_fast: raise the first failed row's error instead of returning it in the row.
        max_requests_per_minute: the most requests sent in any minute; None: no limit of ours.
        max_tokens_per_minute: the most tokens (prompts and answers) in any minute; None: no
            limit of ours.
        max_retries: retries per request that failed transiently.
        num_threads, prompt_format, prompt_formatting_fn, generation_kwargs: as for `LLM`.
        input_cost_per_million_tokens, output_cost_per_million_tokens: prices, as for `LLM`.
    """

    supports_n: ClassVar[bool] = True
    """Whether one `agenerate` call can make several generations."""

    def __init__(
        self,
        task: Optional[Task] = None,
        num_threads: Optional[int] = None,
        prompt_format: Optional[SupportedFormats] = None,
        prompt_formatting_fn: Optional[PromptFormattingFn] = None,
        generation_kwargs: Optional[Dict[str, Any]] = None,
        *,
        max_concurrency: Optional[int] = None,
        fail_fast: bool = False,
        max_requests_per_minute: Optional[float] = None,
        max_tokens_per_minute: Optional[float] = None,
        max_retries: int = 0,
        input_cost_per_million_tokens: Optional[float] = None,
        output_cost_per_million_tokens: Optional[float] = None,
    ) -> None:
        if max_concurrency is not None:
            check_positive_int("max_concurrency", max_concurrency)
        _check_limits(max_requests_per_minute, max_tokens_per_minute, max_retries)
        super().__init__(
            task,
            num_threads=num_threads,
            prompt_format=prompt_format,
            prompt_formatting_fn=prompt_formatting_fn,
            generation_kwargs=generation_kwargs,
            input_cost_per_million_tokens=input_cost_per_million_tokens,
            output_cost_per_million_tokens=output_cost_per_million_tokens,
        )
        self.max_concurrency = max_concurrency
        self.fail_fast = fail_fast
        self.max_requests_per_minute = max_requests_per_minute
        self.max_tokens_per_minute = max_tokens_per_minute
        self._max_retries = max_retries
        self._loop = EventLoopThread(f"{type(self).__name__}-loop")
        self._calls: Set[Future[Outputs]] = set()  # submitted to run on the loop, not done
        self._calls_lock = threading.Lock()
        self._limits = RateLimiter(max_requests_per_minute, max_tokens_per_minute, max_concurrency)

    @property
    def max_retries(self) -> int:
        """Retries per request that failed transiently."""
        return self._max_retries

    @property
    def limits(self) -> RateLimiter:
        """The limits the LLM's requests keep, shared by all its calls: the per-minute ones in
        force (`limit("requests")`, `limit("tokens")`), how many requests may be in flight
        (`concurrency`), and the 429s met (`rate_limited`)."""
        return self._limits

    @abstractmethod
    async def agenerate(
        self, input: Union[str, ChatMessages], num_generations: int = 1, **generation_kwargs: Any
    ) -> AsyncResult:
        """Generates for one input.

        Args:
            input: the prompt as this LLM renders it: a string, or chat messages.
            num_generations: how many generations to make (1 when `supports_n` is False).
            **generation_kwargs: the call's settings, `seed` already offset to this request's
                first generation slot.

        Returns:
            The texts, or distilabel 1.x's dict; see `AsyncResult`. Fewer than asked is fine:
            the rest is asked for again.
        """

    @property
    def in_flight(self) -> int:
        """The calls submitted to run on the event loop (see `_submit`) and not done yet."""
        return len(self._calls)

    def teardown(self, wait: bool = True) -> None:
        """Waits for running rows (`wait=False`: cancels the calls submitted to run on the
        event loop instead), closes what the backend opened (`aclose`) and the event loop.
        Idempotent; `close()` and leaving a `with` block call it."""
        with self._calls_lock:
            calls = list(self._calls)
        if not wait:
            for call in calls:
                call.cancel()
        concurrent.futures.wait(calls)
        super().teardown(wait)
        self._loop.close(self.aclose())

    async def aclose(self) -> None:
        """Closes what the backend opened on the event loop (an HTTP client); run by `close`."""

    def _format_default(self, prompt: Prompt) -> Union[str, ChatMessages]:
        return prompt.format_as("openai")  # API backends take chat messages

    def _generate(
        self,
        inputs: List[Dict[str, Any]],
        num_generations: int = 1,
        generation_kwargs: Optional[GenerationSettings] = None,
    ) -> List[List[LLMOutput]]:
        settings = self._settings(generation_kwargs)
        prompts, offsets = self._generate_prompts(inputs), settings.row_offsets(len(inputs))
        return self._loop.run(self._generate_rows(prompts, offsets, num_generations, settings))

    @property
    def rows_ahead(self) -> int:
        """`max_concurrency` when calls overlap (see `_submit`): a caller keeping that many
        rows submitted, and a call more, keeps every request slot busy, however its rows are
        cut into calls; else 0."""
        return self.max_concurrency if self._overlaps_calls() and self.max_concurrency else 0

    def _overlaps_calls(self) -> bool:
        """Whether `submit` returns at once, the call running on the event loop beside the
        others: with `max_concurrency`, which bounds their requests together (without it a
        call's rows go one at a time, and so do calls), and without `num_threads`."""
        return self.max_concurrency is not None and not self.return_futures

    def _submit(
        self,
        request: GenerationRequest,
        progress: Optional[ProgressCallback] = None,
        member_progress: Optional[MemberProgressCallback] = None,
    ) -> Future[Outputs]:
        """As `LLM._submit`; but with `max_concurrency` (and no `num_threads`) it returns at
        once: the prompts are rendered in this thread and the requests run on the event loop,
        so that a caller (a pipeline) keeps several calls in flight without a thread each, and
        the requests of the next call start as soon as the last ones of this call leave room,
        instead of after the slowest of them. The limiter admits requests in arrival order, so
        an earlier call's requests still go first."""
        if not self._overlaps_calls():
            return super()._submit(request, progress, member_progress)
        try:
            inputs, valid, settings = self._prepare(request)
            settings = settings.for_rows(valid)
            rows = [inputs[position] for position in valid]
            prompts, offsets = self._generate_prompts(rows), settings.row_offsets(len(rows))
        except Exception as error:
            failed: Future[Outputs] = Future()
            failed.set_exception(error)
            return failed
        call = self._loop.submit(
            self._generate_call(
                len(inputs), valid, prompts, offsets, request.num_generations, settings, progress
            )
        )
        with self._calls_lock:
            self._calls.add(call)
        call.add_done_callback(self._call_done)
        return call

    def _call_done(self, call: Future[Outputs]) -> None:
        with self._calls_lock:
            self._calls.discard(call)

    async def _generate_call(
        self,
        num_rows: int,
        valid: List[int],
        prompts: List[Union[str, ChatMessages]],
        offsets: List[int],
        num_generations: int,
        settings: GenerationSettings,
        progress: Optional[ProgressCallback],
    ) -> Outputs:
        """One call submitted with `_submit`, on the event loop: `LLM._run`'s work after the
        prompts."""
        generated = (
            await self._generate_rows(prompts, offsets, num_generations, settings) if valid else []
        )
        rows = self._assemble(num_rows, valid, generated, num_generations)
        if progress is not None and num_rows:
            report_progress(progress, advance=num_rows * num_generations)
        return rows

    # Errors: how a backend explains its own (see OpenAILLM).

    def _fatal_errors(self) -> Tuple[type, ...]:
        """Errors every row would hit too: raised even without `fail_fast`."""
        return ()

    def _transient(self, error: Exception) -> Optional[Transient]:
        """How a failed request's `error` may pass; None if it will not (it is not retried).
        Here timeouts and lost connections; a backend adds its own (OpenAILLM: 429, 5xx)."""
        return Transient() if is_transient_by_default(error) else None

    def _explain(self, error: Exception, retries: Optional[Retries] = None) -> Exception:
        """The error to report for a failed request; `retries` says how its retries went when
        it failed transiently."""
        return error

    def _token_estimate(
        self, prompt: Union[str, ChatMessages], count: int, settings: Dict[str, Any]
    ) -> int:
        """The tokens a request may spend, reserved before it goes: the prompt's (estimated,
        see `estimate_tokens`) and `max_new_tokens` for each of its `count` generations."""
        bound = settings.get("max_new_tokens")
        answer = bound * count if isinstance(bound, int) and not isinstance(bound, bool) else 0
        return estimate_tokens(prompt) + answer

    # Coroutines, all run on `self._loop`.

    async def _generate_rows(
        self,
        prompts: List[Union[str, ChatMessages]],
        offsets: List[int],
        num_generations: int,
        settings: GenerationSettings,
    ) -> List[List[LLMOutput]]:
        # Without `max_concurrency` a call's rows go one after another; the limiter's window is
        # then unbounded but for what 429s teach it.
        turn = asyncio.Semaphore(1) if self.max_concurrency is None else None
        kwargs = agenerate_kwargs(settings)
        tasks = [
            asyncio.ensure_future(
                self._generate_row(prompt, offset, num_generations, kwargs, settings, turn)
            )
            for prompt, offset in zip(prompts, offsets)
        ]
        try:
            return list(await asyncio.gather(*tasks))
        finally:
            # After a failure, stop the other rows' requests instead of leaving them running.
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _generate_row(
        self,
        prompt: Union[str, ChatMessages],
        offset: int,
        num_generations: int,
        kwargs: Dict[str, Any],
        settings: GenerationSettings,
        turn: Optional[asyncio.Semaphore],
    ) -> List[LLMOutput]:
        outputs: List[LLMOutput] = []
        raising: Optional[Tuple[Exception, Exception]] = None
        try:
            while len(outputs) < num_generations:
                wanted = num_generations - len(outputs)
                counts = [wanted] if self.supports_n else [1] * wanted
                first = offset + len(outputs)
                answers = await asyncio.gather(
                    *(
                        self._request(prompt, count, kwargs, first + slot, turn)
                        for slot, count in enumerate(counts)
                    )
                )
                made = [generation for answer in answers for generation in answer]
                if not made:
                    raise RuntimeError(f"{self.model_name} returned no generations for a row.")
                outputs.extend(
                    self._output(prompt, text, stats, error=why, settings=settings)
                    for text, stats, why in made[:wanted]
                )
        except Exception as raised:
            error, retries = _unwrap(raised)
            failure = self._explain(error, retries)
            if self.fail_fast or isinstance(error, self._fatal_errors()):
                raising = (failure, error)
            else:
                logger.error(
                    "%s: %d of %d outputs of a row have raw_output=None: %s",
                    type(self).__name__,
                    num_generations - len(outputs),
                    num_generations,
                    failure,
                )
                for _ in range(num_generations - len(outputs)):
                    output = self._output(prompt, None, error=str(failure))
                    if retries is not None:  # a transient failure the retry loop gave up on
                        output["transient"] = True
                    outputs.append(output)
        if raising is not None:
            # Raised out of the `except` block, so that the error keeps its own context rather
            # than gaining the retry loop's wrapper as one.
            failure, error = raising
            if failure is error:
                raise error
            raise failure from error
        return outputs

    async def _request(
        self,
        prompt: Union[str, ChatMessages],
        count: int,
        settings: Dict[str, Any],
        slot: int,
        turn: Optional[asyncio.Semaphore],
    ) -> List[_Generation]:
        request = dict(settings)
        if "seed" in request:  # the seed of the first slot this request fills
            request["seed"] += slot
        tokens = self._token_estimate(prompt, count, request)
        async with turn or contextlib.nullcontext():
            return await self._send(prompt, count, request, tokens)

    async def _send(
        self, prompt: Union[str, ChatMessages], count: int, request: Dict[str, Any], tokens: int
    ) -> List[_Generation]:
        """One request through the limiter, retried while it fails transiently.

        Raises:
            GaveUp: around a transient failure it stopped retrying.
        """
        made = 0
        while True:
            gave_up: Optional[GaveUp] = None
            ticket = await self._limits.admit(tokens)
            try:
                answer = await self._agenerate_alone(prompt, count, request)
                generations = _read(type(self).__name__, answer)
            except Exception as error:
                transient = self._transient(error)
                if transient is None:
                    raise
                self._limits.failed(ticket, transient.rate_limited, transient.retry_after)
                wait = transient.retry_after
                if wait is not None and wait > MAX_PAUSE_S:
                    gave_up = GaveUp(error, Retries(made, self.max_retries, refused_wait=wait))
                elif made >= self.max_retries:
                    gave_up = GaveUp(error, Retries(made, self.max_retries))
                made += 1
            else:
                self._limits.succeeded(ticket, _tokens_used(generations))
                return generations
            finally:
                self._limits.released(ticket)  # failed otherwise, or cancelled
            if gave_up is not None:
                raise gave_up
            if wait is None:  # after a `Retry-After`, `admit` holds every request until then
                await asyncio.sleep(backoff(made))

    async def _agenerate_alone(
        self, prompt: Union[str, ChatMessages], count: int, request: Dict[str, Any]
    ) -> AsyncResult:
        """`agenerate` in a task of its own. A `CancelledError` that `agenerate` raises while
        nothing cancelled this call (a backend cancelling its own request) would otherwise
        cancel every row of the call: it fails this request only. A real cancellation
        (`fail_fast`, Ctrl-C, `close`) still cancels the request.

        Raises:
            RuntimeError: if `agenerate` raised `CancelledError` by itself.
        """
        call = asyncio.ensure_future(self.agenerate(prompt, count, **request))
        try:
            await asyncio.wait([call])
        except asyncio.CancelledError:
            call.cancel()
            # Wait for the request to end (and retrieve its error) before the caller goes on.
            await asyncio.gather(call, return_exceptions=True)
            raise
        if call.cancelled():
            raise RuntimeError(
                f"{type(self).__name__}.agenerate raised asyncio.CancelledError though nothing "
                "cancelled the call: the backend cancelled its own request. Raise another "
                "exception from agenerate for a request that fails."
            )
        return call.result()


def _check_limits(
    max_requests_per_minute: Optional[float],
    max_tokens_per_minute: Optional[float],
    max_retries: int,
) -> None:
    for name, limit in (
        ("max_requests_per_minute", max_requests_per_minute),
        ("max_tokens_per_minute", max_tokens_per_minute),
    ):
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, (int, float)) or not limit > 0
        ):
            raise ValueError(f"`{name}` must be a positive number or None, not {limit!r}.")
    if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
        raise ValueError(f"`max_retries` must be a non-negative integer, not {max_retries!r}.")


def _unwrap(raised: Exception) -> Tuple[Exception, Optional[Retries]]:
    """The error a request failed with, and how its retries went if it was retried."""
    if isinstance(raised, GaveUp):
        return raised.error, raised.retries
    return raised, None


def _tokens_used(generations: List[_Generation]) -> Optional[int]:
    """The tokens an answer spent by its statistics: its prompt's (the same for each of its
    generations) and every generation's; None when it reported none."""
    counts = [stats for _, stats, _ in generations if stats]
    if not counts:
        return None
    prompt = max(stats.get("input_tokens", 0) for stats in counts)
    return prompt + sum(stats.get("output_tokens", 0) for stats in counts)


def _read(owner: str, answer: Any) -> List[_Generation]:
    """`agenerate`'s answer as one (text, statistics, why) per generation."""
    if isinstance(answer, list):
        return [
            (text, None, None) if isinstance(text, str) else (None, None, _not_text(owner, text))
            for text in answer
        ]
    if not isinstance(answer, dict) or not isinstance(answer.get("generations"), list):
        raise TypeError(
            f"{owner}.agenerate must return a list of texts or a dict with a `generations` "
            f"list, not {answer!r}."
        )
    counts = answer.get("statistics")
    errors = answer.get("errors")
    generations: List[_Generation] = []
    for index, text in enumerate(answer["generations"]):
        stats = TokenStatistics()
        for kind in ("input_tokens", "output_tokens"):
            value = _count(counts, kind, index)
            if value is not None:
                stats[kind] = value  # type: ignore[literal-required]
        why = _at(errors, index)
        if not isinstance(text, str):
            why = why or _not_text(owner, text)
            text = None
        generations.append((text, stats or None, why))
    return generations


def _at(values: Any, index: int) -> Any:
    """`values[index]`, or None when `values` is not a list or too short for it."""
    return values[index] if isinstance(values, list) and index < len(values) else None


def _count(counts: Any, kind: str, index: int) -> Optional[int]:
    """Generation `index`'s token count of `kind`, from a list per generation or one number for
    all; None when missing (a list shorter than the texts) or not a count, so that a bad
    statistic is dropped and never costs the generation its text."""
    value = counts.get(kind) if isinstance(counts, dict) else None
    return token_count(_at(value, index) if isinstance(value, list) else value)


def _not_text(owner: str, text: Any) -> str:
    if text is None:
        return f"{owner}.agenerate returned None for this generation."
    return (
        f"{owner}.agenerate returned {type(text).__name__} {text!r:.100} for this generation, "
        "not a str."
    )


def agenerate_kwargs(settings: GenerationSettings) -> Dict[str, Any]:
    """The keyword arguments `agenerate` takes for `settings`: the user's settings, and the
    structured output spec as `structured_output`."""
    kwargs = dict(settings)
    if settings.structured is not None:
        kwargs[STRUCTURED] = settings.structured
    return kwargs
