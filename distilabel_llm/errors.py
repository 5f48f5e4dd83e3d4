"""Exceptions raised by distilabel_llm, each saying what went wrong and what to do."""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple


class DistilabelLLMError(Exception):
    """Base class of every error this library raises on its own account."""


class OutputParsingError(DistilabelLLMError, ValueError):
    """A task could not parse the text a model returned."""


class GenerationSettingsError(DistilabelLLMError, ValueError):
    """A generation setting is unknown, not taken by the backend, or of the wrong kind."""


class MissingExtraError(DistilabelLLMError, ImportError):
    """An optional backend was used without its extra installed."""

    def __init__(self, package: str, extra: str) -> None:
        super().__init__(
            f"`{package}` is not installed, and this backend needs it. "
            f"Run: pip install 'distilabel_llm[{extra}]'"
        )
        self.package = package
        self.extra = extra


class NotAvailableError(DistilabelLLMError, ImportError):
    """A name from distilabel 0.x or 1.x that this library has no class for; the message says
    what to use instead and which section of the README explains it."""


class ProcessLLMError(DistilabelLLMError):
    """A `ProcessLLM`'s child process failed: its model did not load, or it died.

    Attributes:
        exit_code: the child's exit code when it died (negative: killed by that signal).
        child_traceback: the traceback text from the child, when it raised.
        in_flight: when it died, how many requests it held (1: this one alone).
    """

    def __init__(
        self,
        message: str,
        exit_code: Optional[int] = None,
        child_traceback: Optional[str] = None,
        in_flight: Optional[int] = None,
    ) -> None:
        if child_traceback:
            message = f"{message}\n\nTraceback in the child process:\n{child_traceback}"
        super().__init__(message)
        self.exit_code = exit_code
        self.child_traceback = child_traceback
        self.in_flight = in_flight


class RayLLMError(DistilabelLLMError):
    """A `RayLLM`'s actor failed: its model did not load, or it died for good.

    Attributes:
        remote_traceback: the traceback text from the actor, when it raised.
    """

    def __init__(self, message: str, remote_traceback: Optional[str] = None) -> None:
        if remote_traceback:
            message = f"{message}\n\nTraceback in the Ray actor:\n{remote_traceback}"
        super().__init__(message)
        self.remote_traceback = remote_traceback


class ClusterTooSmallError(DistilabelLLMError, ValueError):
    """The Ray cluster has no room for the actors asked for, even with nothing else running."""


class ModelUnavailableError(DistilabelLLMError):
    """No request to this model can succeed: every pool member is gone, or the server rejected
    the credentials or the model name. A `Pipeline` job stops at once on it, rather than fail
    every row one by one."""


class PoolExhaustedError(ModelUnavailableError):
    """Every member of an `LLMPool` failed, so the work it still held cannot be done."""


class OfflineBatchNotFinishedError(DistilabelLLMError):
    """An offline batch job (`OpenAILLM(use_offline_batch_generation=True)`) has not finished.

    Nothing is lost: run the same call again with the same `jobs_ids` (a `Pipeline` keeps them
    beside its checkpoint) and the results are fetched rather than paid for twice.

    Attributes:
        jobs_ids: the provider's ids of the batch jobs.
    """

    def __init__(self, jobs_ids: Tuple[str, ...], status: str = "in_progress") -> None:
        super().__init__(
            f"The offline batch job(s) {', '.join(jobs_ids)} have not finished (status "
            f"{status!r}). Run again with OpenAILLM(..., jobs_ids={tuple(jobs_ids)!r}) to fetch "
            "the results when they are ready, or set offline_batch_generation_block_until_done"
            "=<seconds between checks> to wait for them."
        )
        self.jobs_ids = tuple(jobs_ids)
        self.status = status

    def __reduce__(self) -> Any:  # rebuilt from its fields when it crosses processes
        return (type(self), (self.jobs_ids, self.status))


class OpenAIRequestError(DistilabelLLMError):
    """A request to an OpenAI-compatible server failed for good (retries spent or not retryable)."""


class OpenAIAccessError(OpenAIRequestError, ModelUnavailableError):
    """The server rejected the API key (401), the project's access (403) or the model (404): no
    request can succeed, so it is raised at once, never absorbed into a row."""


class DatasetError(DistilabelLLMError, ValueError):
    """The input rows cannot be read: a missing file, a bad JSON line, a row that is no dict."""


class CheckpointError(DistilabelLLMError, ValueError):
    """The checkpoint file cannot be used to resume this job."""


class PipelineArgumentError(DistilabelLLMError, TypeError, ValueError):
    """A `Pipeline` was built with neither a generator nor a labeller, or with one that is not
    an LLM.

    Both a `TypeError` and a `ValueError`: legacy distilabel raised `ValueError` here, so a
    script written for it catches this as it did, and new code may catch the `TypeError`.
    """


class PipelineError(DistilabelLLMError, RuntimeError):
    """The job stopped early; `rows` holds the rows it finished (also in the checkpoint)."""

    def __init__(self, message: str, rows: List[Dict[str, Any]]) -> None:
        super().__init__(message)
        self.rows = rows


class BudgetError(DistilabelLLMError, ValueError):
    """A job was given a budget it cannot keep: a model's cost of a call cannot be bounded
    before sending it (no prices, no `max_new_tokens`, a model in another process). Raised
    before any work; the message names the fix."""


class BudgetExhaustedError(PipelineError):
    """The job's budget could not cover its next request, so the job stopped sending: the
    requests in flight finished and were saved, and the rows not sent are left for a rerun
    with a larger budget (in the checkpoint, when there is one). `rows` holds the rows
    finished (as for `PipelineError`).

    Attributes:
        spent: USD the job spent (this run's).
        max_budget: the job's budget, in USD.
        pending: the rows not done, which a rerun with a larger budget does.
        checkpoint: the checkpoint that keeps them, if the job has one.
    """

    def __init__(
        self,
        spent: float,
        max_budget: float,
        rows: List[Dict[str, Any]],
        pending: int,
        checkpoint: Optional[str] = None,
    ) -> None:
        super().__init__("", rows)
        self.spent = spent
        self.max_budget = max_budget
        self.pending = pending
        self.checkpoint = checkpoint

    def __str__(self) -> str:  # from the fields, which the job completes on its way out
        where = (
            f"left pending in {self.checkpoint}: run the job again with a larger `max_budget` "
            "(--max-budget) to resume"
            if self.checkpoint is not None
            else "not done: give the job a `checkpoint` to resume it with a larger budget"
        )
        return (
            f"The budget of {_usd(self.max_budget)} cannot cover the worst case of the next "
            f"request, so the job stopped sending: {_usd(self.spent)} spent, the requests in "
            f"flight finished and saved; {self.pending} rows are {where}."
        )

    def __reduce__(self) -> Any:  # rebuilt from its fields when it crosses processes
        args = (self.spent, self.max_budget, self.rows, self.pending, self.checkpoint)
        return (type(self), args)


# A KeyboardInterrupt, not an error: code that stops on Ctrl-C stops on it too.
class JobInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped the job; `rows` holds the rows it finished (also in the checkpoint)."""

    def __init__(self, rows: List[Dict[str, Any]]) -> None:
        super().__init__(f"Interrupted after {len(rows)} finished rows.")
        self.rows = rows


class ModelError(DistilabelLLMError, ValueError):
    """The model named for a backend cannot be found."""


class ModelNotLoadedError(DistilabelLLMError):
    """Raised by `generate` when the model failed to load; holds the load's traceback."""


def _usd(amount: float) -> str:
    return f"${amount:,.2f}" if amount >= 1 else f"${amount:.4f}"
