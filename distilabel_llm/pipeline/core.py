"""`Pipeline`: generate for every row of a dataset, optionally rate the generations, resumably."""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Set, Union

from distilabel_llm.errors import JobInterrupted, OfflineBatchNotFinishedError, PipelineError
from distilabel_llm.pipeline.checkpoint import Checkpoint, check_checkpoint_path
from distilabel_llm.pipeline.dataset import (
    DatasetError,
    DatasetLike,
    is_hf_dataset,
    load_rows,
    to_hf,
)
from distilabel_llm.pipeline.job import _Stage, run_job
from distilabel_llm.pipeline.job_record import JobRecord
from distilabel_llm.pipeline.legacy import checkpoint_path
from distilabel_llm.pipeline.legacy import refuse as refuse_legacy
from distilabel_llm.pipeline.offline import OfflineJobs, is_offline
from distilabel_llm.pipeline.rows import ERROR_COLUMN, generation_columns, labelling_columns
from distilabel_llm.pipeline.runner import LLMRunner
from distilabel_llm.pipeline.stats import JobStats
from distilabel_llm.pipeline.summary import display_name
from distilabel_llm.progress import AdvanceFn, ProgressDisplay
from distilabel_llm.utils.checks import check_positive_int

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["Pipeline"]

DEFAULT_BATCH_SIZE = 16


def _no_progress(advance: int = 1) -> None:
    pass


class Pipeline:
    """Runs a generator over a dataset, then optionally a labeller over the generations.

    Each model may be a plain or threaded `LLM`, a `ProcessLLM`, a `RayLLM` or an `LLMPool`.
    The pipeline does not close them: they belong to the caller, who may run several jobs with
    them.

    Args:
        generator: writes `num_generations` outputs per row; its task's outputs become lists
            with one item per generation (`generations` for `TextGenerationTask`), beside
            `generation_model` and `raw_generation_responses`.
        labeller: rates each row once, e.g. with `UltraFeedbackTask` or `JudgeLMTask`; adds its
            task's outputs (`rating`, `rationale`) beside `labelling_model` and
            `raw_labelling_response`.

    Example:
        >>> pipeline = Pipeline(generator=FakeLLM(TextGenerationTask()))
        >>> rows = pipeline.generate([{"input": "Hi"}], display_progress_bar=False)
        >>> rows[0]["generations"]
        ['fake #0: Hi']
    """

    def __init__(self, generator: Optional[Any] = None, labeller: Optional[Any] = None) -> None:
        if generator is None and labeller is None:
            raise ValueError("A Pipeline needs a `generator`, a `labeller` or both.")
        for role, llm in (("generator", generator), ("labeller", labeller)):
            if llm is not None and getattr(llm, "task", None) is None:
                raise TypeError(
                    f"The {role} must be an LLM, ProcessLLM, RayLLM or LLMPool with a `task`, "
                    f"not a {type(llm).__name__}."
                )
        if is_offline(labeller):
            raise NotImplementedError(
                "A Pipeline's labeller cannot send offline batch jobs yet (the generator can); "
                "call its `generate` on every row at once, as the README's 'Offline batch "
                "generation' section shows."
            )
        self.generator = generator
        self.labeller = labeller
        self.stats: Optional[JobStats] = None
        """What the last `generate` call did: rows, failures, generations and tokens."""

    def generate(
        self,
        dataset: DatasetLike,
        num_generations: int = 1,
        batch_size: int = DEFAULT_BATCH_SIZE,
        checkpoint: Optional[Union[str, os.PathLike[str]]] = None,
        display_progress_bar: bool = True,
        *,
        console: Optional[Console] = None,
        generation_kwargs: Optional[Dict[str, Any]] = None,
        labeller_generation_kwargs: Optional[Dict[str, Any]] = None,
        include_prompts: bool = True,
        shuffle_before_labelling: bool = False,
        skip_dry_run: bool = True,
        checkpoint_strategy: Optional[Any] = None,
        **legacy: Any,
    ) -> Any:
        """Generates (and labels) every row of `dataset`.

        Args:
            dataset: a list of dicts, the path of a JSONL file or a `datasets.Dataset`.
            num_generations: generator outputs per row.
            batch_size: rows per model call. A kill loses only the batches in flight, which
                the next run redoes: two generating (with a pool, twice as many as it has
                members, at least four) and two labelling.
            checkpoint: a JSONL file that receives each finished row at once. Running the same
                job again with it generates only the rows missing from it or saved with an
                `error`, and the finished file holds every input row once, in input order.
                `<checkpoint>.job.json` records the job's settings and models: resuming with
                others raises `CheckpointError`.
            display_progress_bar: show progress (rich bars on a terminal, plain lines else).
            console: the rich console to draw progress on; standard error by default.
            generation_kwargs: the generator's settings for this job, over its defaults
                (`temperature`, `max_new_tokens`, `seed`, `stop`...).
            labeller_generation_kwargs: the labeller's settings for this job.
            include_prompts: write the prompts as sent (`generation_prompt`, one per
                generation, and `labelling_prompt`); False saves room in large jobs.
            shuffle_before_labelling: put each row's generations in a random order (every
                generator column alike) before the labeller sees them, so that it cannot
                favour the first (legacy's default was True; ours keeps the order).
            skip_dry_run: with False, first run the models on the first row alone, and stop
                before the job if that fails (legacy's default was False). An offline batch
                generator makes no dry run: it would be a batch job of its own.
            checkpoint_strategy: legacy's `DatasetCheckpoint(path=...)`: the checkpoint is
                `<path>/checkpoint.jsonl`. Prefer `checkpoint`.

        Returns:
            The input rows with the generator's and labeller's columns added and an `error`
            column (`None`, or why the row failed: such rows are kept with empty outputs); a
            `datasets.Dataset` when `dataset` is one.

        Raises:
            DatasetError: the dataset cannot be read, or lacks a column a task needs.
            GenerationSettingsError: (a `ValueError`) a setting a model does not take; before
                any work, or, for a model still loading elsewhere, on its first batch.
            CheckpointError: the checkpoint belongs to another job or is held by one.
            JobInterrupted: (a `KeyboardInterrupt`) Ctrl-C, after saving the finished rows.
            PipelineError: a model cannot generate at all (its load failed, its process is
                gone, its server refused the key) or failed on every row of several batches
                in a row; its `rows` are the rows finished so far.
        """
        check_positive_int("num_generations", num_generations)
        check_positive_int("batch_size", batch_size)
        refuse_legacy(legacy)
        if checkpoint_strategy is not None:
            if checkpoint is not None:
                raise ValueError("Pass `checkpoint` or `checkpoint_strategy`, not both.")
            checkpoint = checkpoint_path(checkpoint_strategy)
        settings = {
            role: llm.check_generation_kwargs(kwargs) if llm is not None and kwargs else {}
            for role, llm, kwargs in (
                ("generator", self.generator, generation_kwargs),
                ("labeller", self.labeller, labeller_generation_kwargs),
            )
        }
        rows = load_rows(dataset)
        if checkpoint is not None:
            check_checkpoint_path(checkpoint, dataset)
        self._check_columns(rows)
        offline = is_offline(self.generator)
        if not skip_dry_run and rows and not offline:  # offline, it would be a job of its own
            self._dry_run(rows[0], settings)
        store = Checkpoint(checkpoint) if checkpoint is not None else None
        done = store.open(rows, self._output_columns()) if store is not None else []
        record = JobRecord(store.path) if store is not None else None
        if record is not None:
            try:
                record.start(
                    {
                        "num_generations": num_generations,
                        "generation_kwargs": settings["generator"],
                        "labeller_generation_kwargs": settings["labeller"],
                        "generator_task": _saved_task(self.generator),
                        "labeller_task": _saved_task(self.labeller),
                    },
                    done,
                )
            except BaseException:
                store.close()
                raise
        # Rows saved with an error are done again, and put back in their place.
        redo = [i for i, row in enumerate(done) if row.get(ERROR_COLUMN) is not None]
        if store is not None:
            store.redo(redo)
        self.stats = stats = JobStats(rows_total=len(rows), rows_resumed=len(done) - len(redo))
        display = ProgressDisplay(console=console) if display_progress_bar else None
        todo = [rows[i] for i in redo] + rows[len(done) :]
        offline_jobs: Optional[OfflineJobs] = None
        if offline:  # one job for every row left, fetched (not sent again) by a rerun
            batch_size = max(len(todo), 1)
            offline_jobs = OfflineJobs(Path(f"{store.path}.batch.json") if store else None, todo)
            try:
                offline_jobs.restore(self.generator)
            except BaseException:
                if store is not None:
                    store.close()
                raise
        runners: Dict[int, LLMRunner] = {}
        started = time.monotonic()
        busy_before: List[float] = []
        try:
            if done and display is not None:
                retrying = f"; retrying the {len(redo)} that failed" if redo else ""
                display.console.print(
                    f"Resuming: {stats.rows_resumed} of {len(rows)} rows are already in "
                    f"{checkpoint}{retrying}.",
                    highlight=False,
                    markup=False,
                )
            # Bars count rows, as the summary and the checkpoint do.
            generator = self._stage(
                self.generator, "generator", runners, display, "Generating", len(todo)
            )
            if generator is not None:
                generator.generation_kwargs = settings["generator"]
            if generator is not None:
                # One line per pool member, on the scale of the whole job: its share of it.
                generator.member_advances = [
                    _bar(display, f"  {display_name(name)}", len(todo), show_eta=False)
                    for name in generator.runner.member_names
                ]
            labeller = self._stage(
                self.labeller, "labeller", runners, display, "Labelling", len(todo)
            )
            if labeller is not None:
                labeller.generation_kwargs = settings["labeller"]
            started = time.monotonic()  # models are loaded now: time the generation only
            busy_before = list(getattr(self.generator, "busy_seconds", None) or [])
            with display if display is not None else contextlib.nullcontext():
                new = run_job(
                    todo,
                    generator,
                    labeller,
                    num_generations,
                    batch_size,
                    _saver(store, record),
                    stats,
                    include_prompts=include_prompts,
                    shuffle_before_labelling=shuffle_before_labelling,
                )
        except JobInterrupted as stopped:
            stopped.rows = _merge(done, redo, stopped.rows)
            where = f", saved in {checkpoint}; run the job again to resume" if store else ""
            stopped.args = (f"Stopped with {len(stopped.rows)} of {len(rows)} rows done{where}.",)
            raise
        except PipelineError as stopped:
            stopped.rows = _merge(done, redo, stopped.rows)
            raise
        except OfflineBatchNotFinishedError as pending:
            if offline_jobs is not None:
                offline_jobs.advise(pending)
            raise
        finally:
            stats.elapsed_s = time.monotonic() - started
            if busy_before:
                stats.busy_s_by_member = {
                    name: after - before
                    for name, before, after in zip(
                        self.generator.member_names, busy_before, self.generator.busy_seconds
                    )
                }
            if offline_jobs is not None:
                offline_jobs.keep(self.generator)
            for runner in runners.values():
                runner.close()
            if store is not None:
                store.close()
        results = _merge(done, redo, new)
        return to_hf(results) if is_hf_dataset(dataset) else results

    def _dry_run(self, row: Dict[str, Any], settings: Dict[str, Dict[str, Any]]) -> None:
        """Runs the models on `row` alone; raises if that fails, before the job starts."""
        stages = [
            _Stage(role, LLMRunner(llm), _no_progress, generation_kwargs=settings[role])
            for role, llm in (("generator", self.generator), ("labeller", self.labeller))
            if llm is not None
        ]
        generator = stages[0] if self.generator is not None else None
        labeller = stages[-1] if self.labeller is not None else None
        try:
            (result,) = run_job([row], generator, labeller, 1, 1, _saver(None, None), JobStats())
        except PipelineError as error:
            raise PipelineError(f"The dry run on the first row failed: {error}", []) from error
        finally:
            for stage in stages:
                stage.runner.close()
        if result[ERROR_COLUMN] is not None:
            raise PipelineError(
                f"The dry run on the first row failed, so the job did not start: "
                f"{result[ERROR_COLUMN]}",
                [],
            )

    def _stage(
        self,
        llm: Optional[Any],
        role: str,
        runners: Dict[int, LLMRunner],
        display: Optional[ProgressDisplay],
        description: str,
        total: int,
    ) -> Optional[_Stage]:
        if llm is None:
            return None
        # One runner per model: a model used as generator and labeller gets one call at a time.
        runner = runners.setdefault(id(llm), LLMRunner(llm))
        return _Stage(role, runner, _bar(display, description, total))

    def _output_columns(self) -> Set[str]:
        columns = {ERROR_COLUMN}
        if self.generator is not None:
            columns.update(generation_columns(self.generator.task))
        if self.labeller is not None:
            columns.update(labelling_columns(self.labeller.task))
        return columns

    def _check_columns(self, rows: List[Dict[str, Any]]) -> None:
        """Fails before any generation when no row has a column a task reads."""
        if not rows:
            return
        columns: Set[str] = set().union(*rows)
        stages = []
        if self.generator is not None:
            stages.append(("generator", self.generator.task, columns))
            columns = columns | set(self.generator.task.output_args_names)
        if self.labeller is not None:
            stages.append(("labeller", self.labeller.task, columns))
        for role, task, available in stages:
            missing = sorted(set(task.input_args_names) - available)
            if missing:
                raise DatasetError(
                    f"The {role}'s task {type(task).__name__} needs the column(s) {missing}, "
                    f"which the dataset lacks (it has {sorted(available)}). Add or rename "
                    "the column(s) in the input."
                )


def _bar(
    display: Optional[ProgressDisplay], description: str, total: int, show_eta: bool = True
) -> AdvanceFn:
    if display is None:
        return _no_progress
    return display.add_bar(description, total, show_eta=show_eta, unit="rows")


def _saved_task(llm: Optional[Any]) -> Optional[Dict[str, Any]]:
    """The task of `llm` as plain data, for the job record; None when it has none or cannot
    be saved (a `template` function)."""
    task = getattr(llm, "task", None)
    try:
        return task.to_dict() if task is not None else None
    except (TypeError, AttributeError):
        return None


def _saver(
    store: Optional[Checkpoint], record: Optional[JobRecord]
) -> Callable[[List[Dict[str, Any]]], None]:
    """What the job calls with its finished rows: they go to the checkpoint, if any, once the
    job record has checked that they come from the recorded models."""

    def save(rows: List[Dict[str, Any]]) -> None:
        if record is not None:
            record.check_rows(rows)
        if store is not None:
            store.append(rows)

    return save


def _merge(
    done: List[Dict[str, Any]], redo: List[int], finished: List[Dict[str, Any]]
) -> List[Dict[str, Any]]:
    """The rows in input order: `done`, with its rows at `redo` replaced by the first rows of
    `finished` (as many as there are), then the rest of `finished`."""
    merged = list(done)
    for position, row in zip(redo, finished):
        merged[position] = row
    return merged + finished[len(redo) :]
