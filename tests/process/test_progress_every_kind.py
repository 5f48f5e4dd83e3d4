"""The documented progress patterns work for every kind of LLM: in-process, threaded, in a child
process, in a pool; every kind calls `progress_callback_func(advance=k)`, as legacy did."""

from __future__ import annotations

import io
import logging
from concurrent.futures import Future
from typing import List

import pytest
from rich.console import Console

from distilabel_llm.llm import LLMPool, ProcessLLM
from distilabel_llm.progress import generate_with_progress, progress_bar
from distilabel_llm.testing import FakeLLM

pytestmark = pytest.mark.timeout(60)

ROWS = [{"input": f"q{i}"} for i in range(10)]

KINDS = {
    "plain": lambda task: FakeLLM(task),
    "threaded": lambda task: FakeLLM(task, num_threads=3),
    "process": lambda task: ProcessLLM(task, FakeLLM),
    "pool": lambda task: LLMPool([ProcessLLM(task, FakeLLM), ProcessLLM(task, FakeLLM)]),
}


def _plain_console() -> Console:
    return Console(file=io.StringIO(), force_terminal=False, width=200)


def _text(console: Console) -> str:
    return console.file.getvalue()  # type: ignore[attr-defined]


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_generate_with_progress_ends_full_on_every_kind(task, kind: str) -> None:
    console = _plain_console()
    with KINDS[kind](task) as llm:
        rows = generate_with_progress(llm, ROWS, num_generations=2, console=console)
    assert len(rows) == 10 and all(len(row) == 2 for row in rows)
    lines = _text(console).splitlines()
    assert any(line.startswith("Generating: 10/10 rows (100%)") for line in lines)
    if kind == "pool":  # a line per member, named once it has loaded
        assert any(line.startswith("  #0 fake (CPU): ") for line in lines)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_the_progress_bar_pattern_as_documented(task, kind: str) -> None:
    console = _plain_console()
    with KINDS[kind](task) as llm:
        with progress_bar(total=len(ROWS) * 2, console=console) as advance:
            result = llm.generate(ROWS, num_generations=2, progress_callback_func=advance)
            rows = result.result() if isinstance(result, Future) else result
        printed = _text(console)
        assert "Generating: 20/20 (100%)" in printed.splitlines()[-1]
        llm.generate(ROWS, progress_callback_func=advance)  # after the block: prints nothing
    assert len(rows) == 10 and _text(console) == printed


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_kind_calls_the_callback_with_the_advance_keyword(task, kind: str) -> None:
    advances: List[int] = []

    def legacy_callback(*, advance: int) -> None:  # legacy callbacks are written so
        advances.append(advance)

    with KINDS[kind](task) as llm:
        result = llm.generate(ROWS, num_generations=2, progress_callback_func=legacy_callback)
        if isinstance(result, Future):
            result.result()
    assert sum(advances) == 20


def test_a_raising_callback_is_reported_once(task, caplog: pytest.LogCaptureFixture) -> None:
    calls: List[int] = []

    def broken(advance: int) -> None:
        calls.append(advance)
        raise RuntimeError("display gone")

    with caplog.at_level(logging.ERROR, logger="distilabel_llm"), ProcessLLM(task, FakeLLM) as llm:
        for _ in range(3):
            llm.generate(ROWS[:1], progress_callback_func=broken).result()
    assert len(calls) == 3
    assert caplog.text.count("RuntimeError: display gone") == 1
    assert "called as `callback(advance=k)`" in caplog.text
