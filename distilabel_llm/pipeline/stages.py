"""A job's stages: each model's part of it, built in one place with its model, its settings
and the progress bars it advances.

A stage submits batches through the contract every LLM kind keeps (`BaseLLM.submit`): a
`ProcessLLM`, a `RayLLM`, a threaded `LLM` or an `LLMPool` returns a future at once, so the job
overlaps its batches without threads of its own; a plain `LLM` computes in the job's thread
(its model computes in this process: another thread would overlap nothing, and two threads
driving one model run slower).
"""

from __future__ import annotations

import threading
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional

from distilabel_llm.llm.core.contract import BaseLLM, Outputs
from distilabel_llm.pipeline.stats import JobStats
from distilabel_llm.pipeline.summary import display_name
from distilabel_llm.progress import AdvanceFn, ProgressBar, ProgressDisplay

__all__ = ["BatchProgress", "Stages", "build_stages", "no_progress"]


def no_progress(advance: float = 1) -> None:
    """A bar that shows nothing."""


@dataclass
class _Stage:
    """One model's part of the job: its role, its model, its settings and its bars."""

    role: str  # "generator" or "labeller"
    llm: BaseLLM
    advance: AdvanceFn
    generation_kwargs: Dict[str, Any] = field(default_factory=dict)
    member_advances: List[AdvanceFn] = field(default_factory=list)

    @property
    def task(self) -> Any:
        return self.llm.task

    def submit(
        self,
        rows: List[Dict[str, Any]],
        num_generations: int,
        progress: Optional[Callable[..., None]] = None,
        member_progress: Optional[Callable[..., None]] = None,
    ) -> Future[Outputs]:
        """Starts the model on `rows` with the job's settings; a call refused at once (a
        model that cannot generate) comes back as a failed future, as a batch that fails."""
        try:
            return self.llm.submit(
                rows,
                num_generations,
                progress,
                self.generation_kwargs,
                member_progress_callback_func=member_progress,
            )
        except Exception as error:
            failed: Future[Outputs] = Future()
            failed.set_exception(error)
            return failed

    def member_progress(
        self, stats: JobStats, num_generations: int
    ) -> Optional[Callable[..., None]]:
        """What a pool reports each member's generations to: they are counted in `stats` and
        shown on the member's bar; None when the model is not a pool."""
        if not self.llm.members:
            return None

        def advance(member_index: int, advance: int, output_tokens: int = 0) -> None:
            # Read now, not once: a member that was loading when the job began has a name now.
            name = self.llm.member_names[member_index]
            stats.count_member(name, advance, output_tokens)
            if member_index < len(self.member_advances):
                bar = self.member_advances[member_index]
                rows = advance / num_generations  # bars count rows
                if isinstance(bar, ProgressBar):
                    bar.describe(f"  {display_name(name)}")
                    bar(advance=rows, tokens=output_tokens)
                else:
                    bar(advance=rows)

        return advance


@dataclass
class Stages:
    """The job's generator and labeller stages; either may be None."""

    generator: Optional[_Stage]
    labeller: Optional[_Stage]

    def spend_display(self) -> Optional[Callable[[str], None]]:
        """Where the job's spend shows as it grows: beside its first stage's bar, if shown."""
        stage = self.generator or self.labeller
        bar = stage.advance if stage is not None else None
        return bar.spend if isinstance(bar, ProgressBar) else None


def build_stages(
    generator: Optional[BaseLLM],
    labeller: Optional[BaseLLM],
    settings: Mapping[str, Dict[str, Any]],
    display: Optional[ProgressDisplay] = None,
    total: int = 0,
) -> Stages:
    """Builds the stages of a job over `total` rows.

    Args:
        generator, labeller: the models; either may be None.
        settings: each role's generation settings for this job.
        display: where the bars go: a bar per stage and, for a pool generator, one per
            member; None shows none.
        total: the rows the job runs.
    """
    # Bars count rows, as the summary and the checkpoint do.
    stages = Stages(None, None)
    if generator is not None:
        stages.generator = _Stage(
            "generator",
            generator,
            _bar(display, "Generating", total),
            generation_kwargs=settings["generator"],
            # One line per pool member, on the scale of the whole job: its share of it.
            member_advances=[
                _bar(display, f"  {display_name(name)}", total, show_eta=False)
                for name in generator.member_names
            ],
        )
    if labeller is not None:
        stages.labeller = _Stage(
            "labeller",
            labeller,
            _bar(display, "Labelling", total),
            generation_kwargs=settings["labeller"],
        )
    return stages


class BatchProgress:
    """Advances a bar by exactly its batch's rows, however often the LLM reports: the LLM
    reports generations, `per_row` of them to a row."""

    def __init__(self, advance: AdvanceFn, rows: int, per_row: int = 1) -> None:
        self._advance = advance
        self._per_row = per_row
        self._left = rows * per_row
        self._lock = threading.Lock()

    def __call__(self, advance: int = 1) -> None:
        with self._lock:
            step = min(advance, self._left)
            self._left -= step
        if step > 0:
            self._advance(advance=step / self._per_row)

    def status(self, text: Optional[str]) -> None:
        """Passes on what the LLM waits on (an offline batch job) to a bar that shows it."""
        show = getattr(self._advance, "status", None)
        if show is not None:
            show(text)

    def finish(self) -> None:
        self(self._left)


def _bar(
    display: Optional[ProgressDisplay], description: str, total: int, show_eta: bool = True
) -> AdvanceFn:
    if display is None:
        return no_progress
    return display.add_bar(description, total, show_eta=show_eta, unit="rows")
