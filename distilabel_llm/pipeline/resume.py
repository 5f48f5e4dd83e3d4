"""`Resume`: what a job takes over from its earlier runs, and keeps for the next one.

A checkpointed job reads back the rows its earlier runs finished, checks that it is the same
job (its record), does again the rows saved with an error, fetches the offline batch job an
earlier run sent instead of sending another, and puts the resumed and the new rows together
in input order, whether the run ends or stops.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType
from typing import Any, Dict, List, Mapping, Optional, Set, Union

from distilabel_llm.errors import (
    BudgetExhaustedError,
    JobInterrupted,
    OfflineBatchNotFinishedError,
    PipelineError,
)
from distilabel_llm.llm.core.contract import BaseLLM
from distilabel_llm.pipeline.checkpoint import Checkpoint
from distilabel_llm.pipeline.job_record import JobRecord
from distilabel_llm.pipeline.offline import OfflineJobs
from distilabel_llm.pipeline.rows import ERROR_COLUMN, generation_columns, labelling_columns

__all__ = ["Resume"]

Row = Dict[str, Any]


class Resume:
    """A job's checkpoint, job record and offline batch jobs, from its start to its end.

    Entering it opens (and locks) the checkpoint, reads the rows done by earlier runs and
    checks the job's settings against its record; `todo` is then the rows this run does: the
    ones saved with an error, then those not done yet. Leaving it closes the checkpoint on
    every path, keeps the ids of an unfinished offline batch job, and gives a stopped job's
    error (`JobInterrupted`, `PipelineError`) every row done, resumed ones included. Without a
    checkpoint nothing is resumed or saved, and `todo` is every row.

    Args:
        checkpoint: the checkpoint file, as the caller gave it (messages name it so), or None.
        rows: the job's input rows.
        generator, labeller: the job's models; either may be None.
        settings: the job's settings for its record (`num_generations`, each model's
            generation settings); the models' tasks are added to them.
    """

    def __init__(
        self,
        checkpoint: Optional[Union[str, os.PathLike[str]]],
        rows: List[Row],
        generator: Optional[BaseLLM],
        labeller: Optional[BaseLLM],
        settings: Mapping[str, Any],
    ) -> None:
        self.checkpoint = checkpoint
        self.rows = rows
        self.generator = generator
        self.labeller = labeller
        self.settings = settings
        self.done: List[Row] = []
        """The rows earlier runs saved, the failed ones included."""
        self.redo: List[int] = []
        """The positions in `done` of the rows saved with an error, which this run does again."""
        self.todo: List[Row] = list(rows)
        self._store: Optional[Checkpoint] = None
        self._record: Optional[JobRecord] = None
        self._offline_jobs: Optional[OfflineJobs] = None

    @property
    def rows_resumed(self) -> int:
        """The rows earlier runs finished without an error."""
        return len(self.done) - len(self.redo)

    def __enter__(self) -> Resume:
        try:
            self._open()
        except BaseException:
            self._close()
            raise
        return self

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        error: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        try:
            self._explain(error)
            if self._offline_jobs is not None:
                self._offline_jobs.keep(self.generator)
        finally:
            self._close()

    def restore_offline_jobs(self) -> None:
        """Gives an offline generator the ids of the batch job an earlier run sent for `todo`,
        to fetch its results instead of sending another.

        Raises:
            ValueError: if that job was sent for other rows.
        """
        if self.generator is None or not self.generator.offline:
            return
        path = Path(f"{self._store.path}.batch.json") if self._store is not None else None
        jobs = OfflineJobs(path, self.todo)
        jobs.restore(self.generator)
        self._offline_jobs = jobs  # kept on leaving only once restored: else it would be lost

    def resuming_note(self) -> Optional[str]:
        """What a progress display says first when the run resumes rows, else None."""
        if not self.done:
            return None
        retrying = f"; retrying the {len(self.redo)} that failed" if self.redo else ""
        return (
            f"Resuming: {self.rows_resumed} of {len(self.rows)} rows are already in "
            f"{self.checkpoint}{retrying}."
        )

    def save(self, rows: List[Row]) -> None:
        """Saves finished rows to the checkpoint, if any, once the job record has checked
        that they come from the recorded models."""
        if self._record is not None:
            self._record.check_rows(rows)
        if self._store is not None:
            self._store.append(rows)

    def merged(self, finished: List[Row]) -> List[Row]:
        """The rows in input order: `done`, with its rows at `redo` replaced by the first rows
        of `finished` (as many as there are), then the rest of `finished`."""
        merged = list(self.done)
        for position, row in zip(self.redo, finished):
            merged[position] = row
        return merged + finished[len(self.redo) :]

    def _open(self) -> None:
        if self.checkpoint is not None:
            self._store = Checkpoint(self.checkpoint)
            self.done = self._store.open(self.rows, self._output_columns())
            self._record = JobRecord(self._store.path)
            self._record.start(self._record_settings(), self.done)
        # Rows saved with an error are done again, and put back in their place.
        self.redo = [i for i, row in enumerate(self.done) if row.get(ERROR_COLUMN) is not None]
        if self._store is not None:
            self._store.redo(self.redo)
        self.todo = [self.rows[i] for i in self.redo] + self.rows[len(self.done) :]

    def _explain(self, error: Optional[BaseException]) -> None:
        """Completes the error a run stopped with: its rows, and how to resume."""
        if isinstance(error, (JobInterrupted, PipelineError)):
            error.rows = self.merged(error.rows)
        if isinstance(error, BudgetExhaustedError):
            # Left for a rerun: the rows not saved, and those saved with an error.
            done = sum(row.get(ERROR_COLUMN) is None for row in error.rows)
            error.pending = len(self.rows) - done
            error.checkpoint = str(self.checkpoint) if self._store is not None else None
        if isinstance(error, JobInterrupted):
            where = (
                f", saved in {self.checkpoint}; run the job again to resume"
                if self._store is not None
                else ""
            )
            error.args = (f"Stopped with {len(error.rows)} of {len(self.rows)} rows done{where}.",)
        elif isinstance(error, OfflineBatchNotFinishedError) and self._offline_jobs is not None:
            self._offline_jobs.advise(error)

    def _close(self) -> None:
        if self._store is not None:
            self._store.close()

    def _output_columns(self) -> Set[str]:
        columns = {ERROR_COLUMN}
        if self.generator is not None:
            columns.update(generation_columns(self.generator.task))
        if self.labeller is not None:
            columns.update(labelling_columns(self.labeller.task))
        return columns

    def _record_settings(self) -> Dict[str, Any]:
        return {
            **self.settings,
            "generator_task": _saved_task(self.generator),
            "labeller_task": _saved_task(self.labeller),
        }


def _saved_task(llm: Optional[BaseLLM]) -> Optional[Dict[str, Any]]:
    """The task of `llm` as plain data, for the job record; None when there is no `llm` or
    its task cannot be saved (a `template` function)."""
    if llm is None:
        return None
    try:
        return llm.task.to_dict()
    except (TypeError, AttributeError):
        return None
