"""`Pipeline`: generate for every row of a dataset, optionally rate the generations, resumably."""

from __future__ import annotations

import contextlib
import os
import time
from typing import TYPE_CHECKING, Any, ContextManager, Dict, Iterator, List, Optional, Set, Union

from distilabel_llm.errors import (
    BudgetError,
    BudgetExhaustedError,
    PipelineArgumentError,
    PipelineError,
)
from distilabel_llm.llm.core.contract import BaseLLM
from distilabel_llm.llm.core.cost import format_usd
from distilabel_llm.pipeline.checkpoint import check_checkpoint_path
from distilabel_llm.pipeline.dataset import (
    DatasetError,
    DatasetLike,
    is_hf_dataset,
    load_rows,
    to_hf,
)
from distilabel_llm.pipeline.job import run_job
from distilabel_llm.pipeline.legacy import checkpoint_path
from distilabel_llm.pipeline.legacy import refuse as refuse_legacy
from distilabel_llm.pipeline.resume import Resume
from distilabel_llm.pipeline.rows import ERROR_COLUMN
from distilabel_llm.pipeline.spend import JobSpend, check_budget
from distilabel_llm.pipeline.stages import build_stages
from distilabel_llm.pipeline.stats import JobStats
from distilabel_llm.progress import ProgressDisplay
from distilabel_llm.utils.checks import check_positive_int

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["Pipeline"]

DEFAULT_BATCH_SIZE = 16


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

    Raises:
        PipelineArgumentError: (a `TypeError` and a `ValueError`) neither model given, or
            one that is not an LLM.

    Example:
        >>> pipeline = Pipeline(generator=FakeLLM(TextGenerationTask()))
        >>> rows = pipeline.generate([{"input": "Hi"}], display_progress_bar=False)
        >>> rows[0]["generations"]
        ['fake #0: Hi']
    """

    def __init__(
        self, generator: Optional[BaseLLM] = None, labeller: Optional[BaseLLM] = None
    ) -> None:
        if generator is None and labeller is None:
            raise PipelineArgumentError("A Pipeline needs a `generator`, a `labeller` or both.")
        for role, llm in (("generator", generator), ("labeller", labeller)):
            if llm is not None and not isinstance(llm, BaseLLM):
                raise PipelineArgumentError(
                    f"The {role} must be an LLM, ProcessLLM, RayLLM or LLMPool with a `task`, "
                    f"not a {type(llm).__name__}."
                )
        if labeller is not None and labeller.offline:
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
        max_budget: Optional[float] = None,
        **legacy: Any,
    ) -> Any:
        """Generates (and labels) every row of `dataset`.

        Args:
            dataset: a list of dicts, the path of a JSONL file or a `datasets.Dataset`.
            num_generations: generator outputs per row.
            batch_size: rows per model call. A kill loses only the batches in flight, which
                the next run redoes: two generating (with a pool, twice as many as it has
                members, at least four; with an `AsyncLLM` given `max_concurrency`, enough to
                hold that many rows and one batch more) and two labelling (or, again, as many
                as an `AsyncLLM`'s `max_concurrency` takes).
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
            max_budget: the most USD this run may spend (a dry run included). Each batch's
                worst case is reserved before it is sent, so requests in flight together can
                never overshoot it; when the next batch does not fit, the job stops sending,
                finishes what is in flight and raises `BudgetExhaustedError`, the rows not
                sent left pending in the checkpoint for a rerun with a larger budget. Every
                model needs prices and `max_new_tokens`, and must render its prompts in this
                process (not a `ProcessLLM` or `RayLLM`).

        Returns:
            The input rows with the generator's and labeller's columns added and an `error`
            column (`None`, or why the row failed: such rows are kept with empty outputs); a
            `datasets.Dataset` when `dataset` is one.

        Raises:
            DatasetError: the dataset cannot be read, or lacks a column a task needs.
            GenerationSettingsError: (a `ValueError`) a setting a model does not take; before
                any work, or, for a model still loading elsewhere, on its first batch.
            CheckpointError: the checkpoint belongs to another job or is held by one.
            BudgetError: (a `ValueError`) a `max_budget` with a model whose cost of a call
                cannot be bounded (no prices, no `max_new_tokens`); before any work.
            BudgetExhaustedError: (a `PipelineError`) the budget stopped the job; its
                `pending` rows are left for a rerun with a larger budget.
            JobInterrupted: (a `KeyboardInterrupt`) Ctrl-C, after saving the finished rows.
            PipelineError: a model cannot generate at all (its load failed, its process is
                gone, its server refused the key) or failed on every row of several batches
                in a row; its `rows` are the rows finished so far.
        """
        check_positive_int("num_generations", num_generations)
        check_positive_int("batch_size", batch_size)
        checkpoint = _checkpoint_argument(checkpoint, checkpoint_strategy, legacy)
        settings = self._checked_settings(generation_kwargs, labeller_generation_kwargs)
        models = {"generator": self.generator, "labeller": self.labeller}
        budget = check_budget(max_budget, models, settings)
        rows = load_rows(dataset)
        if checkpoint is not None:
            check_checkpoint_path(checkpoint, dataset)
        self._check_columns(rows)
        offline = self.generator is not None and self.generator.offline
        if not skip_dry_run and rows and not offline:  # offline, it would be a job of its own
            self._dry_run(rows[0], settings, JobSpend(budget, JobStats()))
        recorded = {
            "num_generations": num_generations,
            "generation_kwargs": settings["generator"],
            "labeller_generation_kwargs": settings["labeller"],
        }
        with Resume(checkpoint, rows, self.generator, self.labeller, recorded) as resume:
            self.stats = stats = JobStats(rows_total=len(rows), rows_resumed=resume.rows_resumed)
            display = ProgressDisplay(console=console) if display_progress_bar else None
            resume.restore_offline_jobs()
            if offline:  # one job for every row left, fetched (not sent again) by a rerun
                batch_size = max(len(resume.todo), 1)
            new = self._run(
                resume,
                settings,
                JobSpend(budget, stats),
                display,
                num_generations,
                batch_size,
                include_prompts=include_prompts,
                shuffle_before_labelling=shuffle_before_labelling,
            )
        results = resume.merged(new)
        return to_hf(results) if is_hf_dataset(dataset) else results

    def _run(
        self,
        resume: Resume,
        settings: Dict[str, Dict[str, Any]],
        spend: JobSpend,
        display: Optional[ProgressDisplay],
        num_generations: int,
        batch_size: int,
        **options: bool,
    ) -> List[Dict[str, Any]]:
        """Builds the stages and runs the rows `resume` leaves to do, showing progress on
        `display` and counting in `spend.stats`, within `spend.budget`; returns the finished
        rows."""
        note = resume.resuming_note()
        if note is not None and display is not None:
            display.console.print(note, highlight=False, markup=False)
        stages = build_stages(self.generator, self.labeller, settings, display, len(resume.todo))
        spend.show = stages.spend_display()
        # Timed from here, the models loaded: the job's time is the generation's.
        with _timed(spend.stats, self.generator), _shown(display):
            return run_job(
                resume.todo,
                stages.generator,
                stages.labeller,
                num_generations,
                batch_size,
                resume.save,
                spend.stats,
                spend=spend,
                **options,
            )

    def _checked_settings(
        self,
        generation_kwargs: Optional[Dict[str, Any]],
        labeller_generation_kwargs: Optional[Dict[str, Any]],
    ) -> Dict[str, Dict[str, Any]]:
        """Each role's generation settings for this job, as its model checked them.

        Raises:
            GenerationSettingsError: for a setting the model does not take.
        """
        return {
            role: llm.check_generation_kwargs(kwargs) if llm is not None and kwargs else {}
            for role, llm, kwargs in (
                ("generator", self.generator, generation_kwargs),
                ("labeller", self.labeller, labeller_generation_kwargs),
            )
        }

    def _dry_run(
        self, row: Dict[str, Any], settings: Dict[str, Dict[str, Any]], spend: JobSpend
    ) -> None:
        """Runs the models on `row` alone, within the job's budget; raises if that fails,
        before the job starts."""
        stages = build_stages(self.generator, self.labeller, settings)
        try:
            (result,) = run_job(
                [row], stages.generator, stages.labeller, 1, 1, _discard, spend.stats, spend=spend
            )
        except BudgetExhaustedError as error:
            raise BudgetError(
                f"The budget of {format_usd(error.max_budget)} cannot cover the worst case of "
                "the dry run on the first row, so the job did not start: give it a larger "
                "`max_budget`, or skip the dry run."
            ) from None
        except PipelineError as error:
            raise PipelineError(f"The dry run on the first row failed: {error}", []) from error
        if result[ERROR_COLUMN] is not None:
            raise PipelineError(
                f"The dry run on the first row failed, so the job did not start: "
                f"{result[ERROR_COLUMN]}",
                [],
            )

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


def _checkpoint_argument(
    checkpoint: Optional[Union[str, os.PathLike[str]]],
    checkpoint_strategy: Optional[Any],
    legacy: Dict[str, Any],
) -> Optional[Union[str, os.PathLike[str]]]:
    """The job's checkpoint, given as `checkpoint` or as legacy's `checkpoint_strategy`.

    Raises:
        TypeError: for a legacy argument with no counterpart, naming what to do instead.
        ValueError: for both `checkpoint` and `checkpoint_strategy`.
    """
    refuse_legacy(legacy)
    if checkpoint_strategy is None:
        return checkpoint
    if checkpoint is not None:
        raise ValueError("Pass `checkpoint` or `checkpoint_strategy`, not both.")
    return checkpoint_path(checkpoint_strategy)


@contextlib.contextmanager
def _timed(stats: JobStats, generator: Optional[BaseLLM]) -> Iterator[None]:
    """Records in `stats` the seconds the block took and, for a pool generator, the seconds
    each member was busy meanwhile."""
    started = time.monotonic()
    busy_before = generator.busy_seconds if generator is not None else []
    try:
        yield
    finally:
        stats.elapsed_s = time.monotonic() - started
        if busy_before:
            stats.busy_s_by_member = {
                name: after - before
                for name, before, after in zip(
                    generator.member_names, busy_before, generator.busy_seconds
                )
            }


def _shown(display: Optional[ProgressDisplay]) -> ContextManager[Any]:
    """Shows `display` while the block runs, if there is one."""
    return display if display is not None else contextlib.nullcontext()


def _discard(rows: List[Dict[str, Any]]) -> None:
    """Where a dry run's rows go: nowhere."""
