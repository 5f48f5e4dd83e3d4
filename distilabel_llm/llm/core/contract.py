"""`BaseLLM`: the contract every LLM kind keeps, written once.

Like `concurrent.futures.Executor`, the base writes the calls (`generate`, `submit`,
`generate_outputs`, the settings checks, `close` and the context manager) and each kind
implements only `_submit` (start one `GenerationRequest`, return its `Future`), `teardown` and
`model_name`. `LLM` runs its model in this process, `RemoteLLM` in another one, `LLMPool` over
several LLMs; what a caller (the pipeline) needs to know about any of them is a typed property
here.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from concurrent.futures import Future
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Dict,
    Iterator,
    List,
    Optional,
    Sequence,
    Tuple,
    Union,
)

from distilabel_llm.llm.core.conversations import Conversation, generate_outputs
from distilabel_llm.llm.core.cost import Prices
from distilabel_llm.llm.core.outputs import GenerateOutput, LLMOutput
from distilabel_llm.llm.core.settings import GenerationRequest, GenerationSettings
from distilabel_llm.utils.checks import check_positive_int
from distilabel_llm.utils.lifecycle import StoppingContext

if TYPE_CHECKING:
    from distilabel_llm.tasks.base import Task

__all__ = [
    "BaseLLM",
    "GenerateResult",
    "LoadLLMFn",
    "MemberProgressCallback",
    "Outputs",
    "ProgressCallback",
]

Outputs = List[List[LLMOutput]]
GenerateResult = Union[Outputs, "Future[Outputs]"]
ProgressCallback = Callable[..., None]
"""Called as `callback(advance=k)`: `k` more generations are done."""
MemberProgressCallback = Callable[..., None]
"""Called as `(member_index, advance)`: that pool member made `advance` more generations; with
`output_tokens=` too when it takes that keyword: the output tokens of those generations."""
LoadLLMFn = Callable[["Task"], "BaseLLM"]
"""Builds an LLM from a task, in the process (or Ray actor) that will serve it."""


class BaseLLM(StoppingContext, ABC):
    """What every LLM kind is: it takes rows, generates outputs for them, and can be closed.

    Subclasses implement `model_name`, `_submit` and `teardown`; the properties below have the
    defaults of an LLM that computes in this process, alone.
    """

    task: Task

    @property
    @abstractmethod
    def model_name(self) -> str:
        """The name of the model (waits for a model still loading elsewhere)."""

    @abstractmethod
    def _submit(
        self,
        request: GenerationRequest,
        progress: Optional[ProgressCallback] = None,
        member_progress: Optional[MemberProgressCallback] = None,
    ) -> Future[Outputs]:
        """Starts `request`, its settings already checked; its outputs come in the future.

        An LLM computing in the caller's thread does the work before returning a done
        future. `progress` is called as `progress(advance=k)`; `member_progress` only by pools.
        """

    @abstractmethod
    def teardown(self, wait: bool = True) -> None:
        """Stops the LLM: after its calls in flight finish, or (`wait=False`) at once."""

    # What a caller needs to know; the defaults are those of an in-process LLM.

    @property
    def supported_generation_kwargs(self) -> Optional[Tuple[str, ...]]:
        """The settings this LLM takes; None while not known (a model loading elsewhere)."""
        return None

    @property
    def return_futures(self) -> bool:
        """Whether `generate` returns a `Future` rather than the outputs."""
        return False

    @property
    def model_name_now(self) -> Optional[str]:
        """The model's name if known without waiting, else None (loading, or failed)."""
        return self.model_name

    @property
    def location(self) -> Optional[str]:
        """Where the model computes (`"CPU"`, `"GPU 1"`, a Ray node), when known."""
        return None

    @property
    def failure(self) -> Optional[BaseException]:
        """Why this LLM can no longer generate, or None while it can."""
        return None

    @property
    def in_flight(self) -> int:
        """How many calls are waiting for their answer."""
        return 0

    @property
    def offline(self) -> bool:
        """Whether calls are sent as offline batch jobs, which run on a provider: a pipeline
        sends every row in one call and keeps the jobs' ids for a rerun."""
        return False

    @property
    def members(self) -> Sequence[BaseLLM]:
        """The LLMs a pool spreads calls over; empty for any other LLM."""
        return ()

    @property
    def member_names(self) -> List[str]:
        """A label per member for progress displays; empty for any other LLM."""
        return []

    @property
    def busy_seconds(self) -> List[float]:
        """Seconds each member has had work in flight; empty for any other LLM."""
        return []

    @property
    def calls_ahead(self) -> int:
        """How many calls it pays a caller to keep submitted: one running and one queued
        behind it, so that the model never waits for the caller between two."""
        return 2

    @property
    def rows_ahead(self) -> int:
        """How many rows, across calls, it pays a caller to keep submitted beyond the call it
        waits on: an LLM whose calls run side by side on a bounded number of request slots
        (an `AsyncLLM` with `max_concurrency`) asks for that many, so that however a job cuts
        its rows into calls, no slot waits for the caller; 0: `calls_ahead` says it all."""
        return 0

    @property
    def prices(self) -> Optional[Prices]:
        """The model's prices, when it was given them; None: its cost is unknown (never 0)."""
        return None

    def max_cost(
        self,
        inputs: Sequence[Dict[str, Any]],
        num_generations: int = 1,
        generation_kwargs: Optional[Dict[str, Any]] = None,
    ) -> Optional[float]:
        """The most, in USD, that `generate(inputs, num_generations, ...)` can cost: every
        prompt at a bound on its tokens and every generation `max_new_tokens` long; None when
        that cannot be bounded (see `cost_bound_problem`). A budget reserves it before
        sending the call."""
        return None

    def cost_bound_problem(
        self, generation_kwargs: Optional[Dict[str, Any]] = None
    ) -> Optional[str]:
        """Why `max_cost` cannot bound a call with `generation_kwargs`, naming the fix; None
        when it can."""
        return (
            f"{type(self).__name__} cannot bound what a call costs before sending it: a budget "
            "needs API models in this process that were given their prices, such as "
            "OpenAILLM(..., input_cost_per_million_tokens=..., output_cost_per_million_tokens=...)"
            " or an LLMPool of them."
        )

    # The calls, written once.

    def generate(
        self,
        inputs: Sequence[Dict[str, Any]],
        num_generations: int = 1,
        progress_callback_func: Optional[ProgressCallback] = None,
        generation_kwargs: Optional[Dict[str, Any]] = None,
        *,
        member_progress_callback_func: Optional[MemberProgressCallback] = None,
    ) -> GenerateResult:
        """Generates `num_generations` outputs for every row of `inputs`.

        Args:
            inputs: the rows, each a dict with the task's input keys.
            num_generations: outputs per row.
            progress_callback_func: called as `progress_callback_func(advance=k)` as work
                completes; the advances sum to `len(inputs) * num_generations`.
            generation_kwargs: settings for this call, over the LLM's defaults.
            member_progress_callback_func: for a pool, called as `(member_index, advance)`
                with the same advances, telling which member did the work.

        Returns:
            `len(inputs)` rows of `num_generations` outputs, in input order; a `Future` of
            them when `return_futures` is True.

        Raises:
            GenerationSettingsError: (a `ValueError`) for a setting this LLM does not take, or
                a value of the wrong kind, before any work starts.
        """
        future = self.submit(
            inputs,
            num_generations,
            progress_callback_func,
            generation_kwargs,
            member_progress_callback_func=member_progress_callback_func,
        )
        if self.return_futures:
            return future
        try:
            return future.result()
        except BaseException:
            future.cancel()  # Ctrl-C while waiting: nobody will read the outputs
            raise

    def submit(
        self,
        inputs: Sequence[Dict[str, Any]],
        num_generations: int = 1,
        progress_callback_func: Optional[ProgressCallback] = None,
        generation_kwargs: Optional[Dict[str, Any]] = None,
        *,
        member_progress_callback_func: Optional[MemberProgressCallback] = None,
    ) -> Future[Outputs]:
        """`generate`, always returning a `Future`; see `generate` for the arguments.

        It returns at once for an LLM whose model computes elsewhere (a process, an actor, a
        pool, threads); an LLM computing in this thread has done the work when it returns.
        """
        check_positive_int("num_generations", num_generations)
        if generation_kwargs:
            settings = self.generation_settings(generation_kwargs)
            request = GenerationRequest(list(inputs), num_generations, settings)
        else:  # the usual call: nothing to check
            request = GenerationRequest(list(inputs), num_generations)
        return self._submit(request, progress_callback_func, member_progress_callback_func)

    def generate_outputs(
        self,
        inputs: Sequence[Conversation],
        num_generations: int = 1,
        **generation_kwargs: Any,
    ) -> List[GenerateOutput]:
        """distilabel 1.x's call: generations for each conversation, bypassing the task.

        Args:
            inputs: conversations, each a list of `{"role": ..., "content": ...}` messages
                (or a plain string prompt), sent as they are.
            num_generations: generations per conversation.
            **generation_kwargs: settings for this call, as in `generate`.

        Returns:
            One `{"generations": [...], "statistics": {...}, "errors": [...]}` per input, in
            order; a failed generation is `None` and its `errors` entry says why. It waits for
            the results even when `generate` returns futures.
        """
        return generate_outputs(self, inputs, num_generations, generation_kwargs or None)

    def generation_settings(
        self, generation_kwargs: Optional[Dict[str, Any]]
    ) -> GenerationSettings:
        """`generation_kwargs` checked into the value a call carries (see `GenerationSettings`).

        Raises:
            GenerationSettingsError: (a `ValueError`) naming the setting at fault and the
                settings this LLM takes.
        """
        return GenerationSettings.from_kwargs(
            generation_kwargs, self.supported_generation_kwargs, type(self).__name__
        )

    def check_generation_kwargs(
        self, generation_kwargs: Optional[Dict[str, Any]]
    ) -> Dict[str, Any]:
        """`generation_kwargs` checked against the settings this LLM takes (against the
        catalogue of settings while those are not known).

        Raises:
            GenerationSettingsError: (a `ValueError`) naming the setting at fault and the
                settings this LLM takes.
        """
        return self.generation_settings(generation_kwargs).as_kwargs()

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={value!r}" for name, value in self.__rich_repr__())
        return f"{type(self).__name__}({fields})"

    def __rich_repr__(self) -> Iterator[Tuple[str, Any]]:
        yield "task", type(self.task).__name__
        yield "model_name", self.model_name_now or "<loading>"
