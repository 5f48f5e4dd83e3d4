"""Progress display: rich bars on a terminal, periodic plain lines anywhere else."""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterator, List, Optional, Sequence

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

if TYPE_CHECKING:
    from types import TracebackType

    from rich.progress import Task as RichTask

__all__ = ["AdvanceFn", "ProgressBar", "ProgressDisplay", "generate_with_progress", "progress_bar"]

AdvanceFn = Callable[..., None]
"""Called as `advance()` or `advance(advance=k)`: k more units are done."""


class ProgressBar:
    """One bar of a `ProgressDisplay`: call it as `bar(advance=k)`, or `bar(advance=k,
    tokens=t)` to also count output tokens (the bar then shows tokens per second).

    `describe` relabels it; `status` shows, after the label, what the work waits on while
    nothing is counted (an offline batch job's state). An LLM given a bar as its
    `progress_callback_func` reports such a wait through `status`. `spend` shows what the
    work has cost so far, after the figures.
    """

    def __init__(
        self,
        advance: Callable[[float, int], None],
        relabel: Callable[[str, bool], None],
        description: str = "",
        show_spend: Optional[Callable[[str], None]] = None,
    ) -> None:
        self._advance = advance
        self._relabel = relabel
        self._description = description
        self._status: Optional[str] = None
        self._show_spend = show_spend

    def __call__(self, advance: float = 1, tokens: int = 0) -> None:
        self._advance(advance, tokens)

    def describe(self, description: str) -> None:
        """Changes the bar's label (shown as plain text)."""
        self._description = description
        self._relabel(self._label(), False)

    def status(self, text: Optional[str]) -> None:
        """Shows `text` after the label (None clears it); off a terminal, a changed status
        prints a line at once, since nothing else moves while it holds."""
        if text == self._status:
            return
        self._status = text
        self._relabel(self._label(), text is not None)

    def spend(self, text: str) -> None:
        """Shows `text`, what the work has cost so far (`"$0.0123 of $5.00"`), after the
        figures; off a terminal, in the bar's next line."""
        if self._show_spend is not None:
            self._show_spend(text)

    def per(self, units: int) -> ProgressBar:
        """The same bar, counting `units` calls' advances as one (`bar.per(n)(advance=n)` adds
        one): for an LLM counting generations on a bar of rows. Use one or the other."""
        bar = ProgressBar(
            lambda advance, tokens: self._advance(advance / units, tokens),
            self._relabel,
            self._description,
            self._show_spend,
        )
        bar._status = self._status
        return bar

    def _label(self) -> str:
        return self._description + (f" ({self._status})" if self._status else "")


class _EtaColumn(TimeRemainingColumn):
    """Time remaining, left blank on bars added with `show_eta=False`."""

    def render(self, task: RichTask) -> Text:
        if not task.fields.get("show_eta", True):
            return Text("")
        return Text.assemble("ETA ", super().render(task))


class _TokensColumn(ProgressColumn):
    """Output tokens per second, on bars that count them."""

    def render(self, task: RichTask) -> Text:
        tokens = task.fields.get("tokens", 0)
        elapsed = task.finished_time if task.finished else task.elapsed
        if not tokens or not elapsed:
            return Text("")
        return Text(f"{tokens / elapsed:,.0f} tok/s", style="progress.data.speed")


class _SpendColumn(ProgressColumn):
    """What the work has cost so far, on bars that show it."""

    def render(self, task: RichTask) -> Text:
        spend = task.fields.get("spend")
        return Text(f"spent {spend}" if spend else "", style="progress.data.speed")


class _RateColumn(ProgressColumn):
    def render(self, task: RichTask) -> Text:
        speed = task.finished_speed or task.speed
        return Text("-- /s" if speed is None else f"{speed:,.1f}/s", style="progress.data.speed")


class _CountColumn(ProgressColumn):
    """Done/total, with the bar's unit when it has one: `12/40 rows`."""

    def render(self, task: RichTask) -> Text:
        unit = task.fields.get("unit")
        total = "?" if task.total is None else f"{int(task.total):,}"
        text = f"{int(task.completed):,}/{total}" + (f" {unit}" if unit else "")
        return Text(text, style="progress.download")


@dataclass
class _PlainBar:
    description: str
    total: Optional[int]
    show_eta: bool = True
    unit: Optional[str] = None
    completed: float = 0
    tokens: int = 0
    spend: str = ""
    logged_spend: str = ""
    started: float = field(default_factory=time.monotonic)
    last_logged: float = 0.0
    last_decile: int = 0
    logged_completed: int = -1

    def line(self) -> str:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        rate = self.completed / elapsed
        unit = f" {self.unit}" if self.unit else ""
        done = int(self.completed)
        if self.total is None:
            return f"{self.description}: {done:,}{unit} done, {rate:,.1f}/s"
        percent = 100.0 * self.completed / self.total if self.total else 100.0
        left = self.total - self.completed
        eta = f", ETA {left / rate:,.0f}s" if rate > 0 else ", ETA ?"
        tokens = f", {self.tokens / elapsed:,.0f} tok/s" if self.tokens else ""
        spend = f", spent {self.spend}" if self.spend else ""
        return (
            f"{self.description}: {done:,}/{self.total:,}{unit} ({percent:.0f}%), "
            f"{rate:,.1f}/s{tokens}{spend}, {elapsed:,.0f}s elapsed"
            f"{eta if self.show_eta else ''}"
        )


class ProgressDisplay:
    """Several progress bars shown together, safe to advance from any thread.

    On a terminal this is a live rich display with done/total, rate, elapsed time and time
    remaining. Elsewhere (a log file, CI, a pipe) each bar prints a plain line at every tenth
    of its total, at least every `log_interval` seconds while it moves, and when it is done.

    Args:
        console: where to draw; defaults to a rich console on standard error.
        log_interval: most seconds between plain lines for a bar that is moving.
        transient: on a terminal, remove the bars once the display stops.
    """

    def __init__(
        self,
        console: Optional[Console] = None,
        log_interval: float = 10.0,
        transient: bool = False,
    ) -> None:
        self.console = console if console is not None else Console(stderr=True)
        self.log_interval = log_interval
        self._live = self.console.is_terminal
        self._lock = threading.Lock()
        self._plain: List[_PlainBar] = []
        self._stopped = False
        self._progress = Progress(
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            _CountColumn(),
            _RateColumn(),
            _TokensColumn(),
            _SpendColumn(),
            TimeElapsedColumn(),
            _EtaColumn(),
            console=self.console,
            transient=transient,
            disable=not self._live,
        )

    def add_bar(
        self,
        description: str,
        total: Optional[int] = None,
        show_eta: bool = True,
        unit: Optional[str] = None,
    ) -> ProgressBar:
        """Adds a bar; returns it, to call as the function that advances it.

        Args:
            description: the bar's label, shown as plain text.
            total: units to complete, or `None` for a bar that only counts.
            show_eta: whether to show time remaining; off for a bar that shows one share of
                a total (a pool member's), whose end is not its own.
            unit: what it counts, shown after the figures (`"rows"`).
        """
        if self._live:
            task_id = self._progress.add_task(
                escape(description), total=total, show_eta=show_eta, tokens=0, unit=unit
            )
            return ProgressBar(
                self._live_advance(task_id),
                lambda text, _: self._progress.update(task_id, description=escape(text)),
                description,
                lambda text: self._progress.update(task_id, spend=text),
            )
        bar = _PlainBar(description, total, show_eta=show_eta, unit=unit)
        with self._lock:
            self._plain.append(bar)
        return ProgressBar(
            self._plain_advance(bar),
            self._plain_relabel(bar),
            description,
            lambda text: setattr(bar, "spend", text),
        )

    def start(self) -> None:
        self._progress.start()

    def stop(self) -> None:
        """Stops the display; bars advanced later count but print nothing more."""
        self._progress.stop()
        with self._lock:
            self._stopped = True
            for bar in self._plain:
                if bar.logged_completed != bar.completed or bar.logged_spend != bar.spend:
                    self._log(bar)

    def __enter__(self) -> ProgressDisplay:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.stop()

    def _log(self, bar: _PlainBar) -> None:
        bar.logged_completed = bar.completed
        bar.logged_spend = bar.spend
        self.console.print(bar.line(), highlight=False, markup=False)

    def _live_advance(self, task_id: TaskID) -> Callable[[float, int], None]:
        counted = [0]

        def advance(advance: float = 1, tokens: int = 0) -> None:
            if tokens:
                with self._lock:
                    counted[0] += tokens
                self._progress.update(task_id, advance=advance, tokens=counted[0])
            else:
                self._progress.advance(task_id, advance)

        return advance

    def _plain_relabel(self, bar: _PlainBar) -> Callable[[str, bool], None]:
        def relabel(text: str, announce: bool) -> None:
            with self._lock:
                bar.description = text
                if announce and not self._stopped:
                    bar.last_logged = time.monotonic()
                    self._log(bar)

        return relabel

    def _plain_advance(self, bar: _PlainBar) -> Callable[[float, int], None]:
        def advance(advance: float = 1, tokens: int = 0) -> None:
            with self._lock:
                bar.completed += advance
                bar.tokens += tokens
                now = time.monotonic()
                decile = 10 * bar.completed // bar.total if bar.total else 0
                due = now - max(bar.last_logged, bar.started) >= self.log_interval
                if (decile > bar.last_decile or due) and not self._stopped:
                    bar.last_decile, bar.last_logged = decile, now
                    self._log(bar)

        return advance


@contextmanager
def progress_bar(
    total: Optional[int],
    description: str = "Generating",
    console: Optional[Console] = None,
) -> Iterator[ProgressBar]:
    """Shows one progress bar while the block runs; yields the bar, to call as its `advance`.

    It fits `progress_callback_func`. Wait for the work inside the block, since the bar ends
    with it (`generate` returns a `Future` from a `ProcessLLM` or a threaded LLM):

        with progress_bar(total=len(rows) * 2) as advance:
            result = llm.generate(rows, num_generations=2, progress_callback_func=advance)
            rows = result.result() if isinstance(result, Future) else result

    `generate_with_progress` does all of this for any kind of LLM.
    """
    with ProgressDisplay(console=console) as display:
        yield display.add_bar(description, total)


def generate_with_progress(
    llm: Any,
    inputs: Sequence[Dict[str, Any]],
    num_generations: int = 1,
    *,
    description: str = "Generating",
    console: Optional[Console] = None,
    **generate_kwargs: Any,
) -> List[List[Any]]:
    """`llm.generate(inputs, num_generations)` with a progress bar, for any kind of LLM.

    The bar counts rows (and output tokens per second); a pool gets one more line per member.
    A `Future` is waited for, so the outputs are returned either way.

    Args:
        llm: any kind of LLM (a `BaseLLM`: an `LLM`, `ProcessLLM`, `RayLLM` or `LLMPool`).
        inputs: the rows.
        num_generations: outputs per row.
        description: the bar's label.
        console: the rich console to draw on; standard error by default.
        **generate_kwargs: more arguments of `generate` (`generation_kwargs`).

    Returns:
        `len(inputs)` rows of `num_generations` outputs, in input order.
    """
    inputs = list(inputs)
    with ProgressDisplay(console=console) as display:
        bar = display.add_bar(description, len(inputs), unit="rows")
        names = llm.member_names
        if names:
            members = [
                display.add_bar(f"  {name}", len(inputs), show_eta=False, unit="rows")
                for name in names
            ]

            def on_member(member: int, advance: int, output_tokens: int = 0) -> None:
                members[member].describe(f"  {llm.member_names[member]}")  # loaded by now
                members[member](advance / num_generations, output_tokens)

            generate_kwargs["member_progress_callback_func"] = on_member

        future = llm.submit(
            inputs,
            num_generations=num_generations,
            progress_callback_func=bar.per(num_generations),
            **generate_kwargs,
        )
        return future.result()  # type: ignore[no-any-return]
