"""The `LLM` base class: prompts from a task, generation in the caller or on a thread pool."""

from __future__ import annotations

import functools
import inspect
import logging
import threading
from abc import abstractmethod
from concurrent.futures import Future, ThreadPoolExecutor
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    ClassVar,
    Dict,
    Iterator,
    List,
    Optional,
    Sequence,
    Tuple,
    Union,
)

from distilabel_llm.llm.core._callbacks import report_progress
from distilabel_llm.llm.core.contract import (
    BaseLLM,
    MemberProgressCallback,
    Outputs,
    ProgressCallback,
)
from distilabel_llm.llm.core.conversations import CONVERSATION
from distilabel_llm.llm.core.cost import Prices, max_call_cost
from distilabel_llm.llm.core.outputs import LLMOutput, TokenStatistics
from distilabel_llm.llm.core.settings import GenerationRequest, GenerationSettings
from distilabel_llm.llm.core.structured import STRUCTURED, parse_structured, task_structured_output
from distilabel_llm.tasks.prompt import ChatMessages, Prompt, SupportedFormats
from distilabel_llm.utils.checks import check_positive_int
from distilabel_llm.utils.future_tools import when_all_complete
from distilabel_llm.utils.lifecycle import close_at_exit, forget_at_exit

if TYPE_CHECKING:
    from distilabel_llm.tasks.base import Task

__all__ = ["LLM", "PromptFormattingFn"]

logger = logging.getLogger("distilabel_llm")

PromptFormattingFn = Callable[[Prompt], Union[str, ChatMessages]]


class LLM(BaseLLM):
    """Base class of every LLM: turns task rows into prompts and generates from them.

    Subclasses implement `model_name` and `_generate`. Callers use `generate`, which runs
    `_generate` once for all rows in the calling thread, or, with `num_threads`, once per row
    on a thread pool and returns a `Future`.

    A subclass that takes generation settings lists their names in
    `supported_generation_kwargs` and gives `_generate` a `generation_kwargs` parameter, which
    receives the call's settings: the defaults with the call's overrides on top, checked, as
    a `GenerationSettings` (a read-only mapping of them, with the structured output and the
    rows' first generation slots beside).

    Args:
        task: the task that builds prompts and parses outputs.
        num_threads: run each row on a pool of this many threads and return futures.
        prompt_format: render `Prompt`s in this format instead of the backend's default.
        prompt_formatting_fn: render `Prompt`s with this function; wins over `prompt_format`.
        generation_kwargs: default generation settings, e.g. `{"temperature": 0.7}`.
        input_cost_per_million_tokens, output_cost_per_million_tokens: the model's prices in
            USD (both or neither): each output's statistics then carry its `cost`, and a
            `Pipeline` can hold a job to a budget. Without them the cost is unknown, never 0.

    Raises:
        GenerationSettingsError: (a `ValueError`) for a setting this LLM does not take.
        ValueError: for one price without the other, or a price that is not 0 or more.
    """

    supported_generation_kwargs: ClassVar[Tuple[str, ...]] = ()  # type: ignore[assignment]
    """The generation settings this LLM takes."""

    def __init__(
        self,
        task: Optional[Task] = None,
        num_threads: Optional[int] = None,
        prompt_format: Optional[SupportedFormats] = None,
        prompt_formatting_fn: Optional[PromptFormattingFn] = None,
        generation_kwargs: Optional[Dict[str, Any]] = None,
        *,
        input_cost_per_million_tokens: Optional[float] = None,
        output_cost_per_million_tokens: Optional[float] = None,
    ) -> None:
        check_positive_int("num_threads", num_threads, allow_none=True)
        self._prices = Prices.from_arguments(
            input_cost_per_million_tokens, output_cost_per_million_tokens
        )
        if prompt_format is not None:
            Prompt("", "").format_as(prompt_format)  # fail now, naming the supported formats
        if task is None:  # distilabel 1.x's LLMs take no task: prompts pass through as given
            from distilabel_llm.tasks.text_generation import TextGenerationTask

            task = TextGenerationTask()
        self.task = task
        self.prompt_format = prompt_format
        self.prompt_formatting_fn = prompt_formatting_fn
        self.generation_kwargs: Dict[str, Any] = self.check_generation_kwargs(generation_kwargs)
        """The default generation settings; a call's `generation_kwargs` override them."""
        self._defaults: Tuple[Dict[str, Any], GenerationSettings] = ({}, GenerationSettings())

        self._num_threads = num_threads
        self._thread_pool: Optional[ThreadPoolExecutor] = None
        self._pool_lock = threading.Lock()
        self._closed = False
        self._loaded = False
        self._load_lock = threading.Lock()
        close_at_exit(self)

    @property
    @abstractmethod
    def model_name(self) -> str:
        """The name of the model this LLM runs."""

    @abstractmethod
    def _generate(
        self, inputs: List[Dict[str, Any]], num_generations: int = 1
    ) -> List[List[LLMOutput]]:
        """Generates `num_generations` outputs for each of `inputs`.

        Every row in `inputs` has the keys the task needs. Build prompts with
        `self._generate_prompts(inputs)` and outputs with `self._output(...)`. A subclass that
        takes generation settings adds a `generation_kwargs: Dict[str, Any]` parameter.
        """

    @property
    def uses_gpu(self) -> bool:
        """Whether the model computes on a GPU; backends that can say so override this."""
        return False

    @property
    def num_threads(self) -> Optional[int]:
        """Threads running rows concurrently, or `None` to run in the caller's thread."""
        return self._num_threads

    @property
    def return_futures(self) -> bool:
        """Whether `generate` returns a `Future` rather than the outputs."""
        return self._num_threads is not None

    @property
    def prices(self) -> Optional[Prices]:
        """The prices this LLM was given; None when its cost is unknown."""
        return self._prices

    def cost_bound_problem(
        self, generation_kwargs: Optional[Dict[str, Any]] = None
    ) -> Optional[str]:
        if self._prices is None and not _takes_prices(type(self)):
            return (
                f"{type(self).__name__} {self.model_name!r} takes no prices: it runs a model "
                "of its own, not a paid API; a budget is for API models such as OpenAILLM."
            )
        if self._prices is None:
            return (
                f"{type(self).__name__} {self.model_name!r} has no prices, so what it spends "
                "is unknown: create it with input_cost_per_million_tokens=... and "
                "output_cost_per_million_tokens=... (USD per million tokens, as the provider "
                "lists them)."
            )
        if self._max_new_tokens(generation_kwargs) is None:
            return (
                f"{type(self).__name__} {self.model_name!r} has no `max_new_tokens`, so an "
                "output's length, and its cost, has no bound: set it in `generation_kwargs`."
            )
        return None

    def max_cost(
        self,
        inputs: Sequence[Dict[str, Any]],
        num_generations: int = 1,
        generation_kwargs: Optional[Dict[str, Any]] = None,
    ) -> Optional[float]:
        max_new_tokens = self._max_new_tokens(generation_kwargs)
        if self._prices is None or max_new_tokens is None:
            return None
        inputs, valid = self._check_generate_args(inputs, num_generations)
        prompts = [self._render(inputs[position]) for position in valid]
        return max_call_cost(self._prices, prompts, num_generations, max_new_tokens)

    def load(self) -> None:
        """Loads the model, if it is not loaded yet. Generating calls it first, so calling it
        only moves the load's time (and its errors) up front. Idempotent and thread-safe."""
        if self._loaded:
            return
        with self._load_lock:
            if not self._loaded:
                self._load()
                self._loaded = True

    def unload(self) -> None:
        """Frees the model, and the GPU memory it cached. An LLM that knows where its model
        came from (created from a path) loads it again on the next call. Idempotent."""
        with self._load_lock:
            if self._loaded:
                self._unload()
                self._loaded = False

    def generation_settings(
        self, generation_kwargs: Optional[Dict[str, Any]]
    ) -> GenerationSettings:
        """`generation_kwargs` checked into a call's value, and by the backend (a structured
        output it cannot follow is refused here).

        Raises:
            GenerationSettingsError: (a `ValueError`) naming the setting at fault and the
                settings this LLM takes.
        """
        settings = super().generation_settings(generation_kwargs)
        self._check_settings(settings)
        return settings

    def validate_prompts(
        self,
        inputs: Sequence[Dict[str, Any]],
        default_format: Optional[SupportedFormats] = None,
    ) -> List[Optional[Union[str, ChatMessages]]]:
        """The prompts `generate` would send for `inputs`, `None` for rows it would skip.

        Args:
            inputs: the rows.
            default_format: the format to render in when the LLM has none of its own, as in
                legacy distilabel; the backend's default if None.
        """
        inputs, valid = self._check_generate_args(inputs, num_generations=1)
        prompts: List[Optional[Union[str, ChatMessages]]] = [None] * len(inputs)
        for position in valid:
            prompts[position] = self._render(inputs[position], default_format)
        return prompts

    def teardown(self, wait: bool = True) -> None:
        """Waits for running rows, shuts the thread pool down and unloads the model.
        Idempotent; `close()` and leaving a `with` block call it.

        Args:
            wait: accepted as every LLM kind takes it; a call running in this process cannot
                be stopped, so running rows always finish.
        """
        self._closed = True
        forget_at_exit(self)
        with self._pool_lock:
            pool, self._thread_pool = self._thread_pool, None
        if pool is not None:
            pool.shutdown(wait=True)
        self.unload()

    def __rich_repr__(self) -> Iterator[Tuple[str, Any]]:
        yield "task", type(self.task).__name__
        yield "num_threads", self._num_threads
        yield "prompt_format", self.prompt_format
        yield "model_name", self.model_name

    # Helpers for subclasses.

    def _load(self) -> None:
        """Loads the model; a backend that loads on first use overrides it."""

    def _unload(self) -> None:
        """Frees the model; a backend that holds one overrides it."""

    def _cannot_reload(self, source: str) -> RuntimeError:
        return RuntimeError(
            f"{self!r} was unloaded, and it was given a loaded model, so it cannot load it "
            f"again: create it with {source} ({type(self).__name__}(path, task=...)) to unload "
            "and reload it."
        )

    def _generate_prompts(
        self,
        inputs: List[Dict[str, Any]],
        default_format: Optional[SupportedFormats] = None,
    ) -> List[Union[str, ChatMessages]]:
        """Renders each row's prompt: formatting function, then format, then backend default.

        Args:
            inputs: the rows.
            default_format: the format to use when the user chose none, instead of
                `_format_default` (legacy distilabel backends pass it).
        """
        return [self._render(row, default_format) for row in inputs]

    def _settings(self, generation_kwargs: Optional[GenerationSettings]) -> GenerationSettings:
        """`_generate`'s settings: the defaults when it is called with none (by a subclass)."""
        if generation_kwargs is None:
            return self._call_settings(GenerationSettings())
        return generation_kwargs

    def _check_settings(self, settings: GenerationSettings) -> None:
        """Refuses settings the backend cannot follow, before any work; backends override it
        (a structured output compiled to a grammar, say)."""

    def _format_default(self, prompt: Prompt) -> Union[str, ChatMessages]:
        """Renders a `Prompt` when the user chose no format; backends override this."""
        return prompt.format_as("default")

    def _max_new_tokens(self, generation_kwargs: Optional[Dict[str, Any]]) -> Optional[int]:
        """The `max_new_tokens` a call with `generation_kwargs` runs with, if any."""
        value = {**self.generation_kwargs, **(generation_kwargs or {})}.get("max_new_tokens")
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    def _output(
        self,
        prompt_used: Union[str, ChatMessages, None],
        raw_output: Optional[str],
        statistics: Optional[TokenStatistics] = None,
        error: Optional[str] = None,
        settings: Optional[GenerationSettings] = None,
    ) -> LLMOutput:
        """Builds one output, parsing `raw_output` with the task (`None` if it cannot).

        Args:
            prompt_used: the prompt as sent.
            raw_output: the model's text, or `None` if the backend failed on this row.
            statistics: token counts, when the backend reports them.
            error: why there is no `raw_output`, for a backend that absorbs a failure.
            settings: the call's settings: with a structured output, `raw_output` is read as
                that shape (an output that does not fit gets an `error`).
        """
        why = None
        if settings is not None and settings.structured is not None:
            parsed, why = parse_structured(
                raw_output,
                settings.structured,
                self.task,
                settings.structured_model,
                settings.structured_by_task,
            )
        else:
            parsed = self._parse(raw_output)
        output = LLMOutput(
            model_name=self.model_name,
            prompt_used=prompt_used,
            raw_output=raw_output,
            parsed_output=parsed,
        )
        if statistics is not None:
            output["statistics"] = self._with_cost(statistics)
        if error is not None or why is not None:
            output["error"] = error or why  # type: ignore[typeddict-item]
        return output

    def _with_cost(self, statistics: TokenStatistics) -> TokenStatistics:
        """`statistics` with their `cost` when this LLM has prices and both counts are there."""
        input_tokens = statistics.get("input_tokens")
        output_tokens = statistics.get("output_tokens")
        if self._prices is None or input_tokens is None or output_tokens is None:
            return statistics
        # A copy: a backend may share one statistics dict between outputs.
        return {**statistics, "cost": self._prices.cost(input_tokens, output_tokens)}

    # Internals.

    def _submit(
        self,
        request: GenerationRequest,
        progress: Optional[ProgressCallback] = None,
        member_progress: Optional[MemberProgressCallback] = None,
    ) -> Future[Outputs]:
        """Runs `request` in this thread (the future is done on return), or on the thread pool
        with `num_threads`, a row per task."""
        if self.return_futures:
            inputs, valid, settings = self._prepare(request)
            return self._generate_threaded(
                inputs, valid, request.num_generations, progress, settings
            )
        done: Future[Outputs] = Future()
        try:
            done.set_result(self._run(request, progress))
        except Exception as error:
            done.set_exception(error)
        return done

    def _run(
        self, request: GenerationRequest, progress: Optional[ProgressCallback] = None
    ) -> Outputs:
        """Runs `request` in this thread, whatever `num_threads` says: where the caller is a
        thread of its own already (a pool's, a child's), a future would only cost time."""
        inputs, valid, settings = self._prepare(request)
        num_generations = request.num_generations
        generated = self._call_generate(valid, inputs, num_generations, settings) if valid else []
        rows = self._assemble(len(inputs), valid, generated, num_generations)
        if progress is not None and inputs:
            report_progress(progress, advance=len(inputs) * num_generations)
        return rows

    def _prepare(
        self, request: GenerationRequest
    ) -> Tuple[List[Dict[str, Any]], List[int], GenerationSettings]:
        """The request's rows, the positions of those to send, and the settings `_generate`
        gets; loads the model."""
        inputs, valid = self._check_generate_args(request.inputs, request.num_generations)
        settings = self._call_settings(request.settings)
        settings.row_offsets(len(inputs))  # one offset per row, if a list: checked now
        self.load()
        return inputs, valid, settings

    def _call_settings(self, settings: GenerationSettings) -> GenerationSettings:
        """A call's settings as `_generate` gets them: over this LLM's defaults, with the
        task's own structured output unless one is asked for. The names are checked against
        the backend's here, for settings checked where they were not known (in the process
        that sent them)."""
        owner = type(self).__name__
        settings.check_supported(self.supported_generation_kwargs, owner)
        self._check_settings(settings)
        defaults, checked = self._defaults
        if defaults != self.generation_kwargs:  # set at construction, or changed since
            checked = GenerationSettings.from_kwargs(
                self.generation_kwargs, self.supported_generation_kwargs, owner
            )
            self._defaults = (dict(self.generation_kwargs), checked)
        settings = settings.over(checked)
        if STRUCTURED in self.supported_generation_kwargs:
            settings = settings.with_task_output(task_structured_output(self.task))
        return settings

    def _render(
        self, row: Dict[str, Any], default_format: Optional[SupportedFormats] = None
    ) -> Union[str, ChatMessages]:
        if CONVERSATION in row:  # `generate_outputs`: the conversation is the prompt
            return row[CONVERSATION]  # type: ignore[no-any-return]
        prompt = self.task.generate_prompt(**row)
        if not isinstance(prompt, Prompt):
            return prompt
        if self.prompt_formatting_fn is not None:
            return self.prompt_formatting_fn(prompt)
        if self.prompt_format is not None:
            return prompt.format_as(self.prompt_format)
        if default_format is not None:
            return prompt.format_as(default_format)
        return self._format_default(prompt)

    def _parse(self, raw_output: Optional[str]) -> Optional[Dict[str, Any]]:
        if raw_output is None:
            return None
        try:
            return self.task.parse_output(raw_output)
        except Exception as error:
            logger.warning(
                "%s could not parse an output of %s, so its `parsed_output` is None: %s",
                type(self.task).__name__,
                self.model_name,
                error,
            )
            return None

    def _check_generate_args(
        self, inputs: Sequence[Dict[str, Any]], num_generations: int
    ) -> Tuple[List[Dict[str, Any]], List[int]]:
        """Validates the arguments; returns the rows and the positions of those to send."""
        if self._closed:
            raise RuntimeError(f"{type(self).__name__} is closed; create a new one to generate.")
        check_positive_int("num_generations", num_generations)
        inputs = list(inputs)
        valid: List[int] = []
        for position, row in enumerate(inputs):
            if not isinstance(row, dict):
                raise TypeError(
                    f"Each input must be a dict of the task's inputs, but row {position} is a "
                    f"{type(row).__name__}: {row!r}"
                )
            missing = [] if CONVERSATION in row else self.task.missing_input_args(row)
            if missing:
                logger.warning(
                    "Row %d is missing %s, which %s needs; it is returned with empty outputs.",
                    position,
                    missing,
                    type(self.task).__name__,
                )
            else:
                valid.append(position)
        return inputs, valid

    def _empty_row(self, num_generations: int) -> List[LLMOutput]:
        return [
            LLMOutput(
                model_name=self.model_name, prompt_used=None, raw_output=None, parsed_output=None
            )
            for _ in range(num_generations)
        ]

    def _assemble(
        self,
        num_rows: int,
        valid: List[int],
        generated: List[List[LLMOutput]],
        num_generations: int,
    ) -> List[List[LLMOutput]]:
        """Places the generated rows at their positions and fills the skipped ones."""
        if len(generated) != len(valid):
            raise RuntimeError(
                f"{type(self).__name__}._generate returned {len(generated)} rows for "
                f"{len(valid)} inputs; it must return one row per input."
            )
        rows: List[Optional[List[LLMOutput]]] = [None] * num_rows
        for position, row in zip(valid, generated):
            if len(row) != num_generations:
                raise RuntimeError(
                    f"{type(self).__name__}._generate returned {len(row)} outputs for a row, "
                    f"but {num_generations} were asked for."
                )
            rows[position] = row
        return [row if row is not None else self._empty_row(num_generations) for row in rows]

    def _call_generate(
        self,
        positions: List[int],
        inputs: List[Dict[str, Any]],
        num_generations: int,
        settings: GenerationSettings,
    ) -> Outputs:
        """`_generate` for the rows at `positions`, with their settings if it takes any."""
        rows = [inputs[i] for i in positions]
        if not _takes_settings(type(self)):
            return self._generate(rows, num_generations)
        return self._generate(  # type: ignore[call-arg]
            rows, num_generations, generation_kwargs=settings.for_rows(positions)
        )

    def _generate_threaded(
        self,
        inputs: List[Dict[str, Any]],
        valid: List[int],
        num_generations: int,
        progress_callback_func: Optional[ProgressCallback],
        settings: GenerationSettings,
    ) -> Future[Outputs]:
        pool = self._get_thread_pool()
        futures = [
            pool.submit(self._call_generate, [i], inputs, num_generations, settings) for i in valid
        ]
        if progress_callback_func is not None:
            skipped = len(inputs) - len(valid)
            if skipped:
                report_progress(progress_callback_func, advance=skipped * num_generations)

            def _advance(future: Future[List[List[LLMOutput]]]) -> None:
                if not future.cancelled() and future.exception() is None:
                    report_progress(progress_callback_func, advance=num_generations)

            for future in futures:
                future.add_done_callback(_advance)

        def _combine(results: List[List[List[LLMOutput]]]) -> List[List[LLMOutput]]:
            generated = [row for result in results for row in result]
            return self._assemble(len(inputs), valid, generated, num_generations)

        return when_all_complete(futures, _combine)

    def _get_thread_pool(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._thread_pool is None:
                self._thread_pool = ThreadPoolExecutor(
                    max_workers=self._num_threads,
                    thread_name_prefix=f"{type(self).__name__}-generate",
                )
            return self._thread_pool


@functools.cache
def _takes_prices(cls: type) -> bool:
    """Whether `cls` can be given prices at construction (`LLM`'s own keyword arguments)."""
    parameters = inspect.signature(cls.__init__).parameters
    return "input_cost_per_million_tokens" in parameters or any(
        parameter.kind is inspect.Parameter.VAR_KEYWORD for parameter in parameters.values()
    )


@functools.cache
def _takes_settings(cls: type) -> bool:
    """Whether `cls._generate` has a `generation_kwargs` parameter (legacy ones do not)."""
    return "generation_kwargs" in inspect.signature(cls._generate).parameters
