"""`OpenAILLM`: chat completions from OpenAI or any OpenAI-compatible server."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future
from contextvars import ContextVar
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Dict,
    Iterator,
    List,
    Literal,
    Optional,
    Sequence,
    Tuple,
    Union,
)

from distilabel_llm.errors import (
    GenerationSettingsError,
    MissingExtraError,
    OpenAIAccessError,
    OpenAIRequestError,
)
from distilabel_llm.llm.backends._openai_batch import generate_offline
from distilabel_llm.llm.backends._openai_client import (
    MODEL_CHECK_TIMEOUT,
    async_client,
    chat_messages,
    read_completion,
    redact,
    redact_url,
    retries_made,
    retries_spent,
    seconds,
)
from distilabel_llm.llm.backends._rate_limits import retry_after_seconds
from distilabel_llm.llm.backends.async_llm import AsyncLLM, AsyncResult, Retries, Transient
from distilabel_llm.llm.core.catalogue import check_generation_kwargs
from distilabel_llm.llm.core.contract import MemberProgressCallback, Outputs, ProgressCallback
from distilabel_llm.llm.core.cost import Prices
from distilabel_llm.llm.core.llm import PromptFormattingFn
from distilabel_llm.llm.core.outputs import LLMOutput
from distilabel_llm.llm.core.settings import GenerationRequest, GenerationSettings
from distilabel_llm.llm.core.structured import STRUCTURED
from distilabel_llm.tasks.prompt import ChatMessages, SupportedFormats
from distilabel_llm.utils.checks import check_positive_int

if TYPE_CHECKING:
    import openai

    from distilabel_llm.tasks.base import Task

__all__ = ["OpenAIAccessError", "OpenAILLM", "OpenAIRequestError"]

logger = logging.getLogger("distilabel_llm")

_DEFAULT_MODEL = "gpt-4o-mini"
_STRUCTURED_MODES = ("response_format", "json_object", "extra_body")
# Our setting names that the chat completions API spells otherwise.
_OPENAI_NAMES = {"max_new_tokens": "max_tokens"}
# The model check at construction should fail fast, not wait out a long retry schedule.
_MODEL_CHECK_MAX_RETRIES = 1
# Where the running `generate` call shows an offline batch job's state: its progress
# callback's `status`, when it has one. `_generate` is called without the callback.
_SHOW_STATUS: ContextVar[Optional[Callable[[Optional[str]], None]]] = ContextVar(
    "_SHOW_STATUS", default=None
)


def _import_openai() -> Any:
    try:
        import openai
    except ImportError as error:
        raise MissingExtraError("openai", "openai") from error
    return openai


class OpenAILLM(AsyncLLM):
    """Generates with the chat completions API of OpenAI or any compatible server.

    Requests run on a private asyncio event loop through `openai.AsyncOpenAI`, while
    `generate` stays synchronous (or returns a `Future` with `num_threads`). Without
    `max_concurrency` the rows of one `generate` call are sent one after another, as legacy
    distilabel did; with it, up to that many requests are in flight at once, shared by every
    call and thread, without a thread per request.

    Limits and retries are `AsyncLLM`'s: requests are paced to `max_requests_per_minute` and
    `max_tokens_per_minute`, or to the limits the server states in its `x-ratelimit-*` headers;
    one retry loop (the `openai` client's own retries are off for chat requests) retries 408,
    409, 429, 5xx, connection errors and timeouts up to `max_retries` times, after the server's
    `Retry-After` (which pauses every request of this LLM) or a backoff with jitter; a 429 also
    lowers the requests in flight until successes raise them again. A row that still fails
    comes back with `raw_output=None`, the error logged and `transient: True` in its outputs,
    unless `fail_fast` is set; errors no row can survive (a rejected key: 401, 403, or an
    unknown model: 404) always raise.

    `num_generations` is asked for with `n`. Servers that return fewer choices than `n`
    (llama-cpp-python's returns one) are topped up with further requests; servers that reject
    `n` get one request per generation from then on.

    Statistics: `input_tokens` is the response's `prompt_tokens` (the prompt's size, the same
    for every generation of a row); `output_tokens` splits the response's `completion_tokens`
    evenly over its choices, remainder to the first, so a row's sum equals what was billed.

    Args:
        task: the task that builds prompts and parses outputs; `TextGenerationTask` if None.
        model: the model name sent with every request.
        client: an `openai.AsyncOpenAI` (used as is) or `openai.OpenAI` (its key, base URL,
            organization, project, timeout and retries are copied into an async client).
        api_key: the key; defaults to `OPENAI_API_KEY`. Keyless local servers accept any text.
        base_url: a compatible server's URL, e.g. `"http://127.0.0.1:8000/v1"`; defaults to
            `OPENAI_BASE_URL`, then OpenAI.
        max_new_tokens, frequency_penalty, presence_penalty, temperature, top_p: shortcuts for
            the default `generation_kwargs` of the same names (`max_new_tokens` is sent as
            `max_tokens`).
        num_threads, prompt_format, prompt_formatting_fn: as for `LLM`. Without a format,
            prompts are rendered as OpenAI chat messages.
        max_concurrency: the most requests in flight at once; `None` sends a call's rows
            one at a time.
        max_retries: retries per request; defaults to 5 (or a given client's own setting).
        timeout: seconds per request attempt; defaults to 120 (or a given client's own).
        max_requests_per_minute: the most requests sent in any minute (paced at 95% of it);
            None: only the limits the server states, if it does.
        max_tokens_per_minute: the most tokens in any minute, each request reserving its
            prompt's (estimated) and `max_new_tokens` per choice, corrected from its `usage`.
        fail_fast: raise the first failed row's error instead of returning `None` outputs.
        structured_output_mode: how the `structured_output` setting reaches the server:
            "response_format" (`{"type": "json_schema", ...}`, as OpenAI, vLLM and llama.cpp's
            own server take it), "json_object" (`{"type": "json_object", "schema": ...}`, as
            llama-cpp-python's server and Anyscale take it) or "extra_body" (vLLM's
            `guided_json`, `guided_regex` and `guided_choice`, which also take regular
            expressions and choices).
        extra_body: extra JSON fields sent with every request, e.g. `{"repeat_penalty": 1.0}`
            for llama.cpp's server or `{"top_k": 1}` for vLLM (a shortcut for the
            `extra_body` generation setting).
        generation_kwargs: default settings, over the shortcuts; see
            `supported_generation_kwargs`. With a `seed`, a row's request for slot `k` is
            sent seed `seed + k`.
        validate_model: check `model` against the server's `/models` list at construction,
            when the server offers one.
        use_offline_batch_generation: send each call's requests as one job of the provider's
            Batch API (about half the price, results within 24 hours) instead of one by one.
        offline_batch_generation_block_until_done: seconds between checks of an unfinished
            job; None raises `OfflineBatchNotFinishedError` (with the job's ids) instead.
        input_cost_per_million_tokens, output_cost_per_million_tokens: the model's prices in
            USD, as the provider lists them (both or neither; for offline batch generation,
            the Batch API's). Each output's statistics then carry its `cost`, and a `Pipeline`
            can hold a job to `max_budget`; without them its cost is unknown, never 0.
        jobs_ids: the ids of a job submitted earlier, from `OfflineBatchNotFinishedError` or
            `jobs_ids`: the next call fetches its results instead of submitting again. Each
            result goes to the row whose request it answers (matched by the request's
            content, in any order); a row the job holds no result for fails, saying why.

    Raises:
        MissingExtraError: if `openai` is not installed.
        ValueError: if no API key is found, an argument is invalid, or the server does not
            serve `model`.
        OpenAIRequestError: if the server cannot be reached or rejects the key while checking
            the model.
    """

    supported_generation_kwargs = (
        "max_new_tokens",
        "temperature",
        "top_p",
        "frequency_penalty",
        "presence_penalty",
        "stop",
        "seed",
        "extra_body",
        "response_format",
        "structured_output",
    )

    def __init__(
        self,
        task: Optional[Task] = None,
        model: str = _DEFAULT_MODEL,
        client: Optional[Union[openai.AsyncOpenAI, openai.OpenAI]] = None,
        api_key: Optional[str] = None,
        base_url: Optional[str] = None,
        max_new_tokens: int = 128,
        frequency_penalty: float = 0.0,
        presence_penalty: float = 0.0,
        temperature: float = 1.0,
        top_p: float = 1.0,
        num_threads: Optional[int] = None,
        prompt_format: Optional[SupportedFormats] = None,
        prompt_formatting_fn: Optional[PromptFormattingFn] = None,
        *,
        max_concurrency: Optional[int] = None,
        max_retries: Optional[int] = None,
        timeout: Optional[float] = None,
        max_requests_per_minute: Optional[float] = None,
        max_tokens_per_minute: Optional[float] = None,
        fail_fast: bool = False,
        extra_body: Optional[Dict[str, Any]] = None,
        validate_model: bool = True,
        generation_kwargs: Optional[Dict[str, Any]] = None,
        structured_output_mode: Literal[
            "response_format", "json_object", "extra_body"
        ] = "response_format",
        use_offline_batch_generation: bool = False,
        offline_batch_generation_block_until_done: Optional[float] = None,
        jobs_ids: Optional[Sequence[str]] = None,
        input_cost_per_million_tokens: Optional[float] = None,
        output_cost_per_million_tokens: Optional[float] = None,
    ) -> None:
        openai_module = _import_openai()
        if structured_output_mode not in _STRUCTURED_MODES:
            raise ValueError(
                f"`structured_output_mode` must be one of {_STRUCTURED_MODES}, not "
                f"{structured_output_mode!r}."
            )
        self.structured_output_mode = structured_output_mode
        poll = offline_batch_generation_block_until_done
        if poll is not None and not (isinstance(poll, (int, float)) and poll > 0):
            raise ValueError(
                "`offline_batch_generation_block_until_done` must be a positive number of "
                f"seconds between checks, or None, not {poll!r}."
            )
        self.use_offline_batch_generation = use_offline_batch_generation or bool(jobs_ids)
        if self.use_offline_batch_generation and num_threads is not None:
            raise ValueError(
                "`num_threads` would send each row of a call on its own, but offline batch "
                "generation sends every row of a call in one batch job: leave it unset."
            )
        self.offline_batch_generation_block_until_done = poll
        self.jobs_ids: Optional[Tuple[str, ...]] = tuple(jobs_ids) if jobs_ids else None
        """The ids of the batch job whose results the next call fetches, if any."""
        self._offline_lock = threading.Lock()
        if max_concurrency is not None:
            check_positive_int("max_concurrency", max_concurrency)
        if max_retries is not None and (not isinstance(max_retries, int) or max_retries < 0):
            raise ValueError(f"`max_retries` must be a non-negative integer, not {max_retries!r}.")
        if timeout is not None and not timeout > 0:
            raise ValueError(f"`timeout` must be a positive number of seconds, not {timeout!r}.")
        if not isinstance(model, str) or not model:
            raise ValueError(f"`model` must be a non-empty model name, not {model!r}.")
        shortcuts = {
            "max_new_tokens": max_new_tokens,
            "frequency_penalty": frequency_penalty,
            "presence_penalty": presence_penalty,
            "temperature": temperature,
            "top_p": top_p,
            **({"extra_body": extra_body} if extra_body else {}),
        }
        # Checked before the client exists, so that a bad setting leaves nothing to close.
        settings = check_generation_kwargs(
            {**shortcuts, **(generation_kwargs or {})},
            self.supported_generation_kwargs,
            type(self).__name__,
        )
        Prices.from_arguments(input_cost_per_million_tokens, output_cost_per_million_tokens)
        self._client, self._owns_client = async_client(
            openai_module, client, api_key, base_url, max_retries, timeout
        )
        super().__init__(
            task,
            num_threads,
            prompt_format,
            prompt_formatting_fn,
            generation_kwargs=settings,
            max_concurrency=max_concurrency,
            fail_fast=fail_fast,
            max_requests_per_minute=max_requests_per_minute,
            max_tokens_per_minute=max_tokens_per_minute,
            max_retries=int(self._client.max_retries) if max_retries is None else max_retries,
            input_cost_per_million_tokens=input_cost_per_million_tokens,
            output_cost_per_million_tokens=output_cost_per_million_tokens,
        )
        self._openai = openai_module
        # Chat requests go through AsyncLLM's retry loop alone: the client's own retries would
        # multiply the requests of a 429 storm. (Its HTTP connections are shared.)
        self._chat = self._client.with_options(max_retries=0)
        self.model = model
        self._use_n = True
        if validate_model:
            try:
                self._loop.run(self._check_model())
            except BaseException:
                self.close()
                raise

    @property
    def model_name(self) -> str:
        return self.model

    @property
    def base_url(self) -> str:
        """The server's URL, with any password in it masked."""
        return redact_url(str(self._client.base_url))

    @property
    def offline(self) -> bool:
        """Whether calls are sent as offline batch jobs (`use_offline_batch_generation`)."""
        return self.use_offline_batch_generation

    def _submit(
        self,
        request: GenerationRequest,
        progress: Optional[ProgressCallback] = None,
        member_progress: Optional[MemberProgressCallback] = None,
    ) -> Future[Outputs]:
        """As `LLM._submit`. With offline batch generation, a progress callback that has a
        `status(text)` method (a `ProgressBar` has) shows the batch job's state and request
        counts while the call waits for it."""
        show = getattr(progress, "status", None)
        token = _SHOW_STATUS.set(show if self.use_offline_batch_generation else None)
        try:
            return super()._submit(request, progress, member_progress)
        finally:
            _SHOW_STATUS.reset(token)

    def _overlaps_calls(self) -> bool:
        """As `AsyncLLM`'s; never with offline batch generation, one batch job per call."""
        return not self.use_offline_batch_generation and super()._overlaps_calls()

    async def agenerate(
        self, input: Union[str, ChatMessages], num_generations: int = 1, **generation_kwargs: Any
    ) -> AsyncResult:
        """One chat completion of `input` with `num_generations` choices (fewer, from servers
        that return fewer: `AsyncLLM` asks again for the rest)."""
        body = self._body(generation_kwargs)
        choices = read_completion(await self._complete(chat_messages(input), num_generations, body))
        if not choices:
            raise OpenAIRequestError(f"{self.base_url} returned a completion with no choices.")
        counts = [stats or {} for _, stats, _ in choices]
        return {
            "generations": [text for text, _, _ in choices],
            "statistics": {
                kind: [count.get(kind) for count in counts]
                for kind in ("input_tokens", "output_tokens")
            },
            "errors": [why for _, _, why in choices],
        }

    def _generate(
        self,
        inputs: List[Dict[str, Any]],
        num_generations: int = 1,
        generation_kwargs: Optional[Dict[str, Any]] = None,
    ) -> List[List[LLMOutput]]:
        if not self.use_offline_batch_generation:
            return super()._generate(inputs, num_generations, generation_kwargs)
        settings = self._settings(generation_kwargs)
        prompts, offsets = self._generate_prompts(inputs), settings.row_offsets(len(inputs))
        if not self._offline_lock.acquire(blocking=False):
            raise RuntimeError(
                f"{self!r} is already running an offline batch call: it makes one batch job at "
                "a time. Send every row in one call, or use one OpenAILLM per job."
            )
        try:
            return self._loop.run(
                generate_offline(
                    self, prompts, offsets, num_generations, settings, _SHOW_STATUS.get()
                )
            )
        finally:
            self._offline_lock.release()

    def _body(self, settings: Dict[str, Any]) -> Dict[str, Any]:
        """The request fields for `settings`, in the chat completions API's names."""
        settings = dict(settings)
        structured = settings.pop(STRUCTURED, None)
        body = {_OPENAI_NAMES.get(name, name): value for name, value in settings.items()}
        if structured is not None:
            body.update(self._structured_body(structured, body.get("extra_body")))
        return body

    async def aclose(self) -> None:
        """Closes the HTTP client, if this LLM made it."""
        if self._owns_client:
            await self._client.close()

    def __rich_repr__(self) -> Iterator[Tuple[str, Any]]:
        yield from super().__rich_repr__()
        yield "base_url", self.base_url
        yield "max_concurrency", self.max_concurrency

    def _check_settings(self, settings: GenerationSettings) -> None:
        """A structured output this LLM cannot send in its `structured_output_mode` fails
        now."""
        if settings.structured is not None:
            self._structured_body(settings.structured, None)

    def _structured_body(
        self, spec: Dict[str, Any], extra_body: Optional[Dict[str, Any]]
    ) -> Dict[str, Any]:
        """The request fields asking the server for `spec`: OpenAI's `response_format`, or
        vLLM's `guided_*` fields in `extra_body`."""
        if self.structured_output_mode == "extra_body":
            key = {"json_schema": "guided_json", "regex": "guided_regex", "choice": "guided_choice"}
            ((name, value),) = [(k, v) for k, v in spec.items() if k in key]
            return {"extra_body": {**(extra_body or {}), key[name]: value}}
        if "json_schema" not in spec:
            raise GenerationSettingsError(
                "A regular expression or choices go to the server as vLLM's `guided_regex` or "
                "`guided_choice`: create the OpenAILLM with structured_output_mode='extra_body'."
            )
        if self.structured_output_mode == "json_object":
            return {"response_format": {"type": "json_object", "schema": spec["json_schema"]}}
        schema = {"name": "structured_output", "schema": spec["json_schema"], "strict": True}
        return {"response_format": {"type": "json_schema", "json_schema": schema}}

    # Coroutines, all run on `self._loop`.

    async def _complete(self, messages: ChatMessages, n: int, body: Dict[str, Any]) -> Any:
        """One chat completion asking for `n` choices (one, if the server rejects `n`)."""
        kwargs = {**body, "model": self.model, "messages": messages}
        if n > 1 and self._use_n:
            try:
                return await self._create(n=n, **kwargs)
            except self._openai.BadRequestError as error:
                if getattr(error, "param", None) != "n":
                    raise
                logger.info("%s does not accept `n`; asking once per generation.", self.base_url)
                self._use_n = False
        return await self._create(**kwargs)

    async def _create(self, **kwargs: Any) -> Any:
        """One chat completion request, once; the limits its response's headers state are
        learnt, refused or not."""
        try:
            response = await self._chat.chat.completions.with_raw_response.create(**kwargs)
        except self._openai.APIStatusError as error:
            self._limits.learn(error.response.headers)
            raise
        self._limits.learn(response.headers)
        return response.parse()

    async def _check_model(self) -> None:
        client = self._client.with_options(
            max_retries=_MODEL_CHECK_MAX_RETRIES,
            timeout=min(MODEL_CHECK_TIMEOUT, seconds(self._client.timeout)),
        )
        try:
            served = [model.id async for model in client.models.list()]
        except (self._openai.AuthenticationError, self._openai.PermissionDeniedError) as error:
            raise OpenAIAccessError(
                f"{self.base_url} rejected the API key ({error.status_code}): {error}. Pass a "
                "valid `api_key` or set OPENAI_API_KEY."
            ) from error
        except self._openai.APIConnectionError as error:
            raise OpenAIRequestError(
                f"Could not reach {self.base_url} to check model {self.model!r}: {error}. Is "
                "the server running at that URL? Pass `validate_model=False` to skip the check."
            ) from error
        except (self._openai.APIError, ValueError) as error:
            # No (usable) /models on this server: nothing to check against.
            logger.debug(
                "%s offers no model list (%s); not checking the model.", self.base_url, error
            )
            return
        if served and self.model not in served:
            raise ValueError(
                f"{self.base_url} does not serve model {self.model!r}; it serves "
                f"{', '.join(repr(name) for name in sorted(served))}. Pass one of them as "
                "`model`, or `validate_model=False` if the server accepts other names."
            )

    # Errors.

    def _fatal_errors(self) -> Tuple[type, ...]:
        """Errors that every row would hit too: raised even without `fail_fast`."""
        return (
            self._openai.AuthenticationError,
            self._openai.PermissionDeniedError,
            self._openai.NotFoundError,
        )

    def _transient(self, error: Exception) -> Optional[Transient]:
        """Timeouts, lost connections, and statuses 408, 409, 429 and 5xx."""
        if isinstance(error, self._openai.APIConnectionError):  # timeouts included
            return Transient()
        if not isinstance(error, self._openai.APIStatusError):
            return None
        status = error.status_code
        if status in (408, 409, 429) or status >= 500:
            wait = retry_after_seconds(error.response.headers)
            return Transient(rate_limited=status == 429, retry_after=wait)
        return None

    def _explain(self, error: Exception, retries: Optional[Retries] = None) -> OpenAIRequestError:
        if isinstance(error, OpenAIRequestError):
            return error
        where = f"A request to {self.base_url} for model {self.model!r}"
        what = redact(f"{type(error).__name__}: {error}", str(self._client.base_url))
        if isinstance(error, self._fatal_errors()):
            return OpenAIAccessError(f"{where} was refused, and so would every other: {what}")
        retried = isinstance(error, self._openai.APIConnectionError) or (
            isinstance(error, self._openai.APIStatusError)
            and (error.status_code in (408, 409, 429) or error.status_code >= 500)
        )
        if retries is not None:  # our retry loop's
            return OpenAIRequestError(f"{where} failed {retries_spent(retries)}: {what}")
        if retried:  # the client's own (an offline batch's requests)
            made = retries_made(error, self.max_retries)
            return OpenAIRequestError(f"{where} failed {made}: {what}")
        return OpenAIRequestError(f"{where} failed: {what}")
