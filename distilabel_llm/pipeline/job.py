"""One run of a pipeline: batches through the generator, then the labeller, then to disk.

Batches go through in input order. The generator always has the next batch queued while it
works on the current one (a pool: twice as many batches as it has members, so that none idles
while a batch is collected and written; an API model: as many as its `max_concurrency` rows
fill, and one more), and the labeller rates batch i while the generator works on batch i + 1,
so neither waits on the other when both can run at once. Finished batches are handed to
`on_rows_done` in input order, which is what keeps the checkpoint a prefix of the input.

With a budget, a batch is sent only once its worst case is reserved (see `spend`). One the
budget cannot cover waits for the batches in flight to settle, then is halved until it fits;
when a single row does not fit, the job stops sending, finishes what is in flight and raises
`BudgetExhaustedError`.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import random
import signal
import threading
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Callable, Deque, Dict, Iterator, List, Optional, Union

from distilabel_llm.errors import (
    BudgetExhaustedError,
    GenerationSettingsError,
    JobInterrupted,
    ModelUnavailableError,
    OfflineBatchNotFinishedError,
    PipelineError,
)
from distilabel_llm.llm.core.contract import Outputs
from distilabel_llm.llm.core.outputs import LLMOutput
from distilabel_llm.pipeline.rows import (
    ERROR_COLUMN,
    GENERATION_FAILED,
    LABELLING_FAILED,
    PROMPT_COLUMNS,
    generation_fields,
    labelling_fields,
    no_text_error,
    shuffle_generations,
)
from distilabel_llm.pipeline.spend import JobSpend, Reservation
from distilabel_llm.pipeline.stages import BatchProgress, _Stage, no_progress
from distilabel_llm.pipeline.stats import JobStats

__all__ = ["JobInterrupted", "PipelineError", "run_job"]

logger = logging.getLogger("distilabel_llm")

# This many batches in a row whose every row the model failed on means a model is broken (a
# dead process, a server down): the job stops, and those rows are left unwritten so that re-running
# it retries them instead of keeping them as failures.
_MAX_FAILED_BATCHES_IN_A_ROW = 3

RowResult = Union[List[LLMOutput], Exception]


@dataclass
class _Batch:
    rows: List[Dict[str, Any]]
    progress: BatchProgress
    send: List[int] = field(default_factory=list)  # positions of the rows sent to the model
    future: Optional[Future[Outputs]] = None
    reservation: Reservation = field(default_factory=lambda: Reservation(0.0))


def run_job(
    inputs: List[Dict[str, Any]],
    generator: Optional[_Stage],
    labeller: Optional[_Stage],
    num_generations: int,
    batch_size: int,
    on_rows_done: Callable[[List[Dict[str, Any]]], None],
    stats: JobStats,
    *,
    include_prompts: bool = True,
    shuffle_before_labelling: bool = False,
    spend: Optional[JobSpend] = None,
) -> List[Dict[str, Any]]:
    """Runs `inputs` through the stages; returns the finished rows, in input order.

    Args:
        include_prompts: keep the prompts as sent (`generation_prompt`, `labelling_prompt`).
        shuffle_before_labelling: put each row's generations in a random order first.
        spend: counts what the job spends and holds it to its budget; by default, only
            counts it (in `stats`).

    Raises:
        JobInterrupted: on Ctrl-C, after the rows finished so far went to `on_rows_done`.
        PipelineError: when the generator fails on several whole batches in a row.
        BudgetExhaustedError: when the budget cannot cover the next batch, after the batches
            in flight finished and went to `on_rows_done`.
    """
    job = _Job(
        generator,
        labeller,
        num_generations,
        on_rows_done,
        stats,
        include_prompts=include_prompts,
        shuffle=random.Random() if shuffle_before_labelling else None,
        spend=spend if spend is not None else JobSpend(None, stats),
    )
    batches = [inputs[start : start + batch_size] for start in range(0, len(inputs), batch_size)]
    try:
        job.run(batches, batch_size)
    except KeyboardInterrupt:
        job.cancel()
        raise JobInterrupted(job.finished) from None
    except BaseException:
        job.cancel()
        raise
    return job.finished


class _Job:
    """One run's state: the batches in flight, the rows finished, the failed ones held back."""

    def __init__(
        self,
        generator: Optional[_Stage],
        labeller: Optional[_Stage],
        num_generations: int,
        on_rows_done: Callable[[List[Dict[str, Any]]], None],
        stats: JobStats,
        include_prompts: bool = True,
        shuffle: Optional[random.Random] = None,
        spend: Optional[JobSpend] = None,
    ) -> None:
        self.generator = generator
        self.labeller = labeller
        self.num_generations = num_generations
        self.on_rows_done = on_rows_done
        self.stats = stats
        self.finished: List[Dict[str, Any]] = []
        self._in_flight: List[_Batch] = []
        self._held: List[Dict[str, Any]] = []  # wholly failed batches, written once one succeeds
        self._failed_in_a_row = 0
        self.include_prompts = include_prompts
        self.shuffle = shuffle  # None keeps each row's generations in their order
        self.spend = spend if spend is not None else JobSpend(None, stats)
        self._rows_total = 0

    def run(self, batches: List[List[Dict[str, Any]]], batch_size: int) -> None:
        """Runs `batches` (of `batch_size` rows, the last one fewer) through the stages and
        writes them, in input order."""
        # The generator keeps as many batches submitted as its model asks (a pool: enough for
        # every member; an API model: enough to fill its request slots); the labeller one
        # running while the next is submitted (more measured no faster), or as many as its API
        # model's slots take; batches are collected and written in input order.
        generating: Deque[_Batch] = collections.deque()
        labelling: Deque[_Batch] = collections.deque()
        generating_ahead = 1
        if self.generator is not None:
            llm = self.generator.llm
            generating_ahead = _ahead(llm.calls_ahead, llm.rows_ahead, batch_size)
        labelling_ahead = 1
        if self.labeller is not None:
            labelling_ahead = _ahead(2, self.labeller.llm.rows_ahead, batch_size)
        self._rows_total = sum(len(batch) for batch in batches)
        index = 0
        while index < len(batches):  # `_top_up` may split a batch the budget cannot cover
            self._top_up(generating, labelling, batches, index, generating_ahead)
            batch = generating.popleft()
            self._collect_generation(batch)
            labelling.append(self._label_within_budget(batch.rows, generating, labelling))
            while len(labelling) >= labelling_ahead:
                self._finish(labelling.popleft())
            index += 1
        while labelling:
            self._finish(labelling.popleft())
        if self._held:
            self._write(self._held)

    def _top_up(
        self,
        generating: Deque[_Batch],
        labelling: Deque[_Batch],
        batches: List[List[Dict[str, Any]]],
        index: int,
        ahead: int,
    ) -> None:
        """Keeps `ahead` batches from `batches[index]` on submitted to the generator, as far
        as the budget covers them. With none in flight, the labelling in flight finishes
        first (settling it may give budget back), then a batch that still does not fit is
        halved until it does, so that the budget's last dollars are used too; the job stops
        when a single row does not fit."""
        while len(generating) < ahead and index + len(generating) < len(batches):
            batch = self._submit_generation(batches[index + len(generating)])
            if batch is None:
                break
            generating.append(batch)
        if generating:
            return
        while labelling:
            self._finish(labelling.popleft())
        batch = self._submit_generation(batches[index])
        while batch is None:
            rows = batches[index]
            # An offline LLM sends one batch job for every row left: a rerun fetches it whole.
            if len(rows) == 1 or self.generator is None or self.generator.llm.offline:
                self._stop_for_budget(generating)
            half = (len(rows) + 1) // 2
            batches[index : index + 1] = [rows[:half], rows[half:]]
            batch = self._submit_generation(batches[index])
        generating.append(batch)

    def _label_within_budget(
        self, rows: List[Dict[str, Any]], generating: Deque[_Batch], labelling: Deque[_Batch]
    ) -> _Batch:
        """Submits `rows` to the labeller once the budget covers them, after what is in flight
        settled if need be (the labelling, then the generation); else stops the job, whose
        rows generated and not labelled are left pending."""
        batch = self._submit_labelling(rows)
        if batch is None:
            while labelling:
                self._finish(labelling.popleft())
            batch = self._submit_labelling(rows)
        if batch is None:
            self._settle_generating(generating)
            batch = self._submit_labelling(rows)
        if batch is None:
            self._stop_for_budget(generating)
        return batch  # type: ignore[return-value]

    def _settle_generating(self, generating: Deque[_Batch]) -> None:
        """Waits for the batches generating, and settles what they cost; they stay queued."""
        for batch in generating:
            if batch.future is not None:
                with contextlib.suppress(Exception):  # a failure is the batch's collector's
                    self.spend.settle(batch.reservation, batch.future.result())

    def _stop_for_budget(self, generating: Deque[_Batch]) -> None:
        """Stops the job for want of budget: waits for the batches still generating (sent and
        paid for), writes the rows held back, and raises."""
        self._settle_generating(generating)
        for batch in generating:
            if batch.future is not None:
                self._in_flight.remove(batch)
        if self._held:
            self._write(self._held)
            self._held = []
        succeeded = sum(row[ERROR_COLUMN] is None for row in self.finished)
        raise BudgetExhaustedError(
            self.spend.spent,
            self.spend.budget.limit if self.spend.budget is not None else 0.0,
            self.finished,
            pending=self._rows_total - succeeded,
        )

    def cancel(self) -> None:
        """Cancels the batches submitted and not collected yet."""
        for batch in self._in_flight:
            if batch.future is not None:
                batch.future.cancel()

    # Generation.

    def _submit_generation(self, inputs: List[Dict[str, Any]]) -> Optional[_Batch]:
        """Sends a batch to the generator; None, sending nothing, when the budget cannot
        cover it now."""
        rows = [dict(row) for row in inputs]
        if self.generator is None:
            return _Batch(rows, BatchProgress(no_progress, 0))
        stage = self.generator
        batch = _Batch(rows, BatchProgress(stage.advance, len(rows), self.num_generations))
        batch.send = _sendable(stage.task, rows)
        sent = [rows[i] for i in batch.send]
        reservation = self._reserve(stage, sent, self.num_generations)
        if reservation is None:
            return None
        batch.reservation = reservation
        self._fail_unsendable(stage.task, batch, generation_fields)
        if batch.send:
            batch.future = stage.submit(
                sent,
                self.num_generations,
                progress=batch.progress,
                member_progress=stage.member_progress(self.stats, self.num_generations),
            )
            self.spend.settle_when_done(batch.future, reservation)
            self._in_flight.append(batch)
        return batch

    def _reserve(
        self, stage: _Stage, rows: List[Dict[str, Any]], num_generations: int
    ) -> Optional[Reservation]:
        return self.spend.reserve(stage.llm, rows, num_generations, stage.generation_kwargs)

    def _collect_generation(self, batch: _Batch) -> None:
        if self.generator is None:
            return
        stage = self.generator
        results = self._results(stage, batch, self.num_generations)
        for position, result in zip(batch.send, results):
            row = batch.rows[position]
            if isinstance(result, Exception):
                row.update(generation_fields(stage.task, None))
                row[ERROR_COLUMN] = GENERATION_FAILED + _describe(result)
            else:
                self.stats.count_outputs(result)
                row.update(generation_fields(stage.task, result))
                row[ERROR_COLUMN] = no_text_error(GENERATION_FAILED, result)

    # Labelling.

    def _submit_labelling(self, rows: List[Dict[str, Any]]) -> Optional[_Batch]:
        """Sends the rows to the labeller; None, changing nothing, when the budget cannot
        cover them now."""
        if self.labeller is None:
            return _Batch(rows, BatchProgress(no_progress, 0))
        stage = self.labeller
        send = [i for i in _sendable(stage.task, rows) if rows[i].get(ERROR_COLUMN) is None]
        # Reserved before the shuffle, which changes the order of a prompt's parts, not its size.
        reservation = self._reserve(stage, [rows[i] for i in send], 1)
        if reservation is None:
            return None
        if self.shuffle is not None and self.generator is not None:
            for row in rows:
                shuffle_generations(row, self.generator.task, self.shuffle)
        batch = _Batch(rows, BatchProgress(stage.advance, len(rows)), reservation=reservation)
        batch.send = send
        sent = set(batch.send)
        for position, row in enumerate(rows):
            if position not in sent:
                row.update(labelling_fields(stage.task, None))
        self._fail_unsendable(stage.task, batch, labelling_fields, only_unfailed=True)
        batch.progress(len(rows) - len(batch.send))
        if batch.send:
            batch.future = stage.submit([rows[i] for i in batch.send], 1, progress=batch.progress)
            self.spend.settle_when_done(batch.future, reservation)
            self._in_flight.append(batch)
        return batch

    def _finish(self, batch: _Batch) -> None:
        if self.labeller is not None:
            stage = self.labeller
            results = self._results(stage, batch, 1)
            for position, result in zip(batch.send, results):
                row = batch.rows[position]
                if isinstance(result, Exception):
                    row.update(labelling_fields(stage.task, None))
                    row[ERROR_COLUMN] = LABELLING_FAILED + _describe(result)
                else:
                    row.update(labelling_fields(stage.task, result[0]))
                    row[ERROR_COLUMN] = no_text_error(LABELLING_FAILED, result)
        for row in batch.rows:
            if not self.include_prompts:
                for column in PROMPT_COLUMNS:
                    row.pop(column, None)
            row[ERROR_COLUMN] = row.pop(ERROR_COLUMN, None)  # last column, whatever came before
        self._write_or_hold(batch.rows)

    # Shared.

    def _results(self, stage: _Stage, batch: _Batch, num_generations: int) -> List[RowResult]:
        """The outputs of each row sent, or its exception; retries a failed batch row by row."""
        results: List[RowResult] = []
        if batch.future is not None:
            try:
                results = list(batch.future.result())
            except Exception as error:
                self._stop_if_unusable(stage, error)
                # The rows are sent again under the batch's reservation, which covers each once.
                results = self._retry_rows(stage, batch, num_generations, error)
            # Settled here too (once): the future's callback may not have run yet.
            self.spend.settle(batch.reservation, results)
            # Only now: on Ctrl-C the batch must stay in flight so that `cancel` stops it.
            self._in_flight.remove(batch)
        batch.progress.finish()
        return results

    def _retry_rows(
        self, stage: _Stage, batch: _Batch, num_generations: int, error: Exception
    ) -> List[RowResult]:
        if len(batch.send) == 1 or stage.llm.offline:
            # Row by row, an offline LLM would send one batch job per row: its rows fail together.
            return [error] * len(batch.send)
        logger.warning(
            "A batch of %d rows failed (%s); retrying them one by one to find the failing rows.",
            len(batch.send),
            _describe(error),
        )
        results: List[RowResult] = []
        for position in batch.send:
            try:
                results.append(stage.submit([batch.rows[position]], num_generations).result()[0])
            except Exception as row_error:
                self._stop_if_unusable(stage, row_error)
                results.append(row_error)
        return results

    def _stop_if_unusable(self, stage: _Stage, error: Exception) -> None:
        """Stops the job at once when no row can succeed: the model did not load, its process
        is gone for good, its server refused the key, a generation setting is refused. Trying
        every row would only fail each one and save it as failed. An offline batch job not
        finished yet stops it too: row by row, each would send a job of its own."""
        if isinstance(error, OfflineBatchNotFinishedError):
            raise error
        if isinstance(error, (ModelUnavailableError, GenerationSettingsError)) or (
            stage.llm.failure is not None
        ):
            raise PipelineError(
                f"The {stage.role} cannot generate, so the job stopped after "
                f"{len(self.finished)} finished rows (fix it and run the job again to "
                f"resume): {error}",
                self.finished,
            )

    def _fail_unsendable(
        self,
        task: Any,
        batch: _Batch,
        fields: Callable[[Any, None], Dict[str, Any]],
        only_unfailed: bool = False,
    ) -> None:
        sent = set(batch.send)
        for position, row in enumerate(batch.rows):
            if position in sent or (only_unfailed and row.get(ERROR_COLUMN) is not None):
                continue
            missing = task.missing_input_args(row)
            if missing:
                logger.warning(
                    "A row has no value for %s, which %s needs, so it is saved with an error: "
                    "%.120r",
                    missing,
                    type(task).__name__,
                    {k: v for k, v in row.items() if k != ERROR_COLUMN},
                )
                row.update(fields(task, None))
                row[ERROR_COLUMN] = (
                    f"row has no value for {missing}, which {type(task).__name__} needs"
                )

    def _write_or_hold(self, rows: List[Dict[str, Any]]) -> None:
        errors = [row[ERROR_COLUMN] or "" for row in rows]
        if rows and all(e.startswith((GENERATION_FAILED, LABELLING_FAILED)) for e in errors):
            self._held.extend(rows)
            self._failed_in_a_row += 1
            if self._failed_in_a_row >= _MAX_FAILED_BATCHES_IN_A_ROW:
                raise PipelineError(
                    f"The models failed on {self._failed_in_a_row} whole batches in a row, so "
                    f"the job stopped; last error: {errors[-1]}. The {len(self.finished)} rows "
                    "finished so far are kept; fix the model and run the job again to resume.",
                    self.finished,
                )
            return
        self._failed_in_a_row = 0
        self._write([*self._held, *rows])
        self._held = []

    def _write(self, rows: List[Dict[str, Any]]) -> None:
        # A Ctrl-C landing between saving the rows and counting them would misreport them.
        with _interrupts_deferred():
            self.on_rows_done(rows)
            self.finished.extend(rows)
            self.stats.rows_done += len(rows)
            self.stats.rows_failed += sum(row[ERROR_COLUMN] is not None for row in rows)


@contextlib.contextmanager
def _interrupts_deferred() -> Iterator[None]:
    """Holds back a Ctrl-C (SIGINT) until the block is done, then raises it."""
    # Only the main thread receives signals; a handler set outside Python cannot be restored.
    if threading.current_thread() is not threading.main_thread() or (
        signal.getsignal(signal.SIGINT) is None
    ):
        yield
        return
    interrupted = False

    def _remember(signum: int, frame: Any) -> None:
        nonlocal interrupted
        interrupted = True

    previous = signal.signal(signal.SIGINT, _remember)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if interrupted:
            raise KeyboardInterrupt


def _ahead(calls: int, rows: int, batch_size: int) -> int:
    """The batches worth keeping submitted to a model: `calls`, or more where its
    `rows_ahead` (`rows`) takes more: those rows' worth of batches and one more behind them."""
    return max(calls, -(-rows // batch_size) + 1)


def _sendable(task: Any, rows: List[Dict[str, Any]]) -> List[int]:
    return [i for i, row in enumerate(rows) if not task.missing_input_args(row)]


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"
