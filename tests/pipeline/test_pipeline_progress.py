"""Progress of a job: plain lines off a terminal, rich bars (one per pool member) on one."""

from __future__ import annotations

import io
import re
from typing import Callable

import pytest
from pipeline_helpers import LengthRatingTask
from rich.console import Console

from distilabel_llm.llm.pool.pool import LLMPool
from distilabel_llm.pipeline import Pipeline
from distilabel_llm.pipeline.summary import display_name, summary_table
from distilabel_llm.testing import FakeLLM

pytestmark = pytest.mark.timeout(30)

MakeLLM = Callable[..., FakeLLM]
ROWS = [{"input": f"q{i}"} for i in range(20)]


def test_plain_lines_off_a_terminal(make_llm: MakeLLM) -> None:
    console = Console(file=io.StringIO(), force_terminal=False, width=200)
    Pipeline(generator=make_llm()).generate(ROWS, num_generations=2, batch_size=5, console=console)
    lines = console.file.getvalue().splitlines()  # type: ignore[attr-defined]
    assert lines, "no progress lines"
    assert all("\x1b[" not in line for line in lines)  # no terminal control codes
    # Bars count rows, as the summary does; the outputs' tokens per second follow the rate.
    assert lines[-1].startswith("Generating: 20/20 rows (100%)")
    assert re.search(r"Generating: \d+/20 rows \(\d+%\), [\d.,]+/s", lines[0])


def test_rich_bars_with_one_line_per_pool_member(make_llm: MakeLLM) -> None:
    console = Console(record=True, force_terminal=True, width=120, file=io.StringIO())
    pool = LLMPool([make_llm(model_name="alpha"), make_llm(model_name="beta")], "balance")
    pipeline = Pipeline(generator=pool)
    out = pipeline.generate(ROWS, batch_size=10, console=console)
    assert len(out) == 20
    text = console.export_text()
    assert re.search(r"Generating\s.*20/20 rows", text)
    assert re.search(r"#0 alpha\s.*/20 rows\s.*tok/s", text)
    assert re.search(r"#1 beta\s.*/20 rows\s.*tok/s", text)
    assert pipeline.stats is not None
    shares = pipeline.stats.generations_by_member
    assert set(shares) == {"#0 alpha", "#1 beta"} and sum(shares.values()) == 20
    busy = pipeline.stats.busy_s_by_member  # each member had work in flight, within the job
    assert set(busy) == set(shares)
    assert all(0 < seconds <= pipeline.stats.elapsed_s for seconds in busy.values())

    console = Console(record=True, width=120, file=io.StringIO())
    console.print(summary_table(pipeline.stats, pool))
    summary = console.export_text()
    assert "20 rows generated" in summary
    assert "#0 alpha" in summary and "#1 beta" in summary
    assert "Busy" in summary and "Idle" in summary
    assert re.search(r"#0 alpha\s.*\d+%\s.*\d+\.\ds", summary)  # busy share, idle seconds


def test_labelling_bar_and_resume_message(make_llm: MakeLLM, tmp_path) -> None:
    checkpoint = tmp_path / "out.jsonl"
    pipeline = Pipeline(generator=make_llm(), labeller=make_llm(LengthRatingTask()))
    pipeline.generate(ROWS[:5], checkpoint=checkpoint, display_progress_bar=False)
    console = Console(file=io.StringIO(), force_terminal=False, width=200)
    pipeline.generate(ROWS, checkpoint=checkpoint, batch_size=5, console=console)
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert f"Resuming: 5 of 20 rows are already in {checkpoint}" in text
    assert "Labelling: 15/15 rows (100%)" in text


def test_display_name_shortens_paths() -> None:
    assert display_name("#0 /home/me/models/tiny-llama.gguf") == "#0 tiny-llama.gguf"
    assert (
        display_name("#1 /home/me/models/llama-7b-abc/hf (GPU 1)") == "#1 llama-7b-abc/hf (GPU 1)"
    )
    assert display_name("gpt-4o") == "gpt-4o"
