"""Progress display: rich bars on a terminal, plain counted lines elsewhere, thread-safe."""

from __future__ import annotations

import io
import threading
from typing import Callable, List

import pytest
from rich.console import Console

from distilabel_llm.progress import ProgressDisplay, progress_bar
from distilabel_llm.tasks import TextGenerationTask
from distilabel_llm.testing import FakeLLM


def _terminal() -> Console:
    return Console(record=True, force_terminal=True, width=100, file=io.StringIO())


def _plain() -> Console:
    return Console(file=io.StringIO(), force_terminal=False, width=200)


def _lines(console: Console) -> List[str]:
    return console.file.getvalue().splitlines()  # type: ignore[attr-defined]


def _advance_from_threads(advance: Callable[..., None], threads: int, times: int) -> None:
    start = threading.Barrier(threads)

    def work() -> None:
        start.wait(timeout=10)
        for _ in range(times):
            advance()

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=30)
        assert not worker.is_alive()


def test_default_console_is_standard_error() -> None:
    assert ProgressDisplay().console.stderr


# On a terminal


def test_terminal_bar_shows_done_total_rate_and_eta() -> None:
    console = _terminal()
    with progress_bar(total=10, description="Generating rows", console=console) as advance:
        for _ in range(4):
            advance()
        advance(advance=6)
    text = console.export_text()
    last = text.strip().split("Generating rows")[-1]
    assert "10/10" in last
    assert "/s" in last
    assert "ETA" in last
    assert "Generating rows" in text


def test_terminal_bars_advanced_from_many_threads_sum_exactly() -> None:
    console = _terminal()
    with ProgressDisplay(console=console) as display:
        first = display.add_bar("first", total=4_000)
        second = display.add_bar("second", total=800)
        _advance_from_threads(first, threads=8, times=500)
        _advance_from_threads(lambda: second(advance=2), threads=4, times=100)
    text = console.export_text()
    assert "4,000/4,000" in text.split("first")[-1]
    assert "800/800" in text.split("second")[-1]


# Not a terminal


def test_plain_lines_at_each_tenth_with_counts() -> None:
    console = _plain()
    with progress_bar(total=1_000, description="Rows", console=console) as advance:
        for _ in range(1_000):
            advance()
    lines = _lines(console)
    assert len(lines) == 10
    assert [line.split(", ")[0] for line in lines] == [
        f"Rows: {100 * k:,}/1,000 ({10 * k}%)" for k in range(1, 11)
    ]
    assert lines[-1].startswith("Rows: 1,000/1,000 (100%), ")
    assert "/s" in lines[-1] and "elapsed" in lines[-1] and "ETA" in lines[-1]
    assert "\x1b[" not in console.file.getvalue()  # type: ignore[attr-defined]


def test_plain_final_line_when_stopped_between_tenths() -> None:
    console = _plain()
    with progress_bar(total=100, description="Rows", console=console) as advance:
        advance(advance=15)
    lines = _lines(console)
    assert lines[0].startswith("Rows: 15/100 (15%)")
    assert len(lines) == 1  # nothing new to say at stop


def test_plain_line_at_stop_for_a_bar_without_total() -> None:
    console = _plain()
    with progress_bar(total=None, description="Count", console=console) as advance:
        for _ in range(7):
            advance(advance=2)
    assert [line.split(",")[0] for line in _lines(console)] == ["Count: 14 done"]


def test_plain_lines_every_log_interval_while_moving() -> None:
    console = _plain()
    with ProgressDisplay(console=console, log_interval=0.0) as display:
        advance = display.add_bar("Rows", total=1_000)
        for _ in range(3):
            advance()
    assert [line.split(" (")[0] for line in _lines(console)] == [
        "Rows: 1/1,000",
        "Rows: 2/1,000",
        "Rows: 3/1,000",
    ]


def test_plain_bars_advanced_from_many_threads_sum_exactly() -> None:
    console = _plain()
    with ProgressDisplay(console=console, log_interval=3600.0) as display:
        advance = display.add_bar("Rows", total=8_000)
        _advance_from_threads(advance, threads=8, times=1_000)
    lines = _lines(console)
    assert len(lines) == 10
    assert lines[-1].startswith("Rows: 8,000/8,000 (100%)")


# With an LLM


@pytest.mark.parametrize("num_threads", [None, 4])
def test_generate_drives_a_progress_bar(num_threads: object) -> None:
    console = _plain()
    inputs = [{"input": str(i)} for i in range(20)] + [{}]
    llm = FakeLLM(TextGenerationTask(), num_threads=num_threads)  # type: ignore[arg-type]
    with llm, progress_bar(total=len(inputs) * 2, console=console) as advance:
        result = llm.generate(inputs, num_generations=2, progress_callback_func=advance)
        if llm.return_futures:
            result.result(timeout=10)  # type: ignore[union-attr]
    assert _lines(console)[-1].startswith("Generating: 42/42 (100%)")


def test_descriptions_are_plain_text_and_share_bars_hide_their_eta() -> None:
    for console in (_terminal(), _plain()):
        with ProgressDisplay(console=console) as display:
            display.add_bar("install [llama-cpp]", total=4)(advance=4)
            display.add_bar("member share", total=4, show_eta=False)(advance=2)
        text = console.export_text() if console.record else console.file.getvalue()
        last_install, last_share = text.splitlines()[-2:]  # the final frame, or final lines
        assert "install [llama-cpp]" in last_install and "ETA" in last_install
        assert "member share" in last_share and "ETA" not in last_share


def test_a_status_shows_after_the_label_and_a_change_prints_a_plain_line() -> None:
    terminal, plain = _terminal(), _plain()
    with ProgressDisplay(console=terminal) as display:
        display.add_bar("Generating", total=4).per(2).status("batch job b-1 in_progress")
    assert "Generating (batch job b-1 in_progress)" in terminal.export_text()
    with ProgressDisplay(console=plain) as display:
        bar = display.add_bar("Generating", total=4, unit="rows")
        per_row = bar.per(2)  # an LLM counting two generations a row
        per_row.status("batch job b-1 in_progress")
        per_row.status("batch job b-1 in_progress")  # unchanged: no second line
        per_row(advance=4)
        per_row.status(None)
        bar.describe("Done")
        bar(advance=2)
    lines = _lines(plain)
    first, last = lines[0], lines[-1]
    assert sum("b-1" in line for line in lines) == 2  # one line at the status, one at 2/4
    assert first.startswith("Generating (batch job b-1 in_progress): 0/4 rows (0%)")
    assert last.startswith("Done: 4/4 rows (100%)")
