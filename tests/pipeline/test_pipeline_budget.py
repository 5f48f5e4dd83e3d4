"""Cost and budgets: each row's cost, the spend shown and summed up, and a budget that
requests in flight together never overshoot, which stops a job resumably."""

from __future__ import annotations

import importlib.util
import io
import json
import re
from pathlib import Path
from typing import Any, Callable, Dict, List

import pytest
from pipeline_helpers import LengthRatingTask, fault_server_module, read_rows
from rich.console import Console

from distilabel_llm.cli import main
from distilabel_llm.errors import BudgetError, BudgetExhaustedError, PipelineError
from distilabel_llm.pipeline import Pipeline
from distilabel_llm.pipeline.summary import summary_table
from distilabel_llm.tasks import TextGenerationTask
from distilabel_llm.testing import FakeLLM

pytestmark = pytest.mark.timeout(60)
needs_openai = pytest.mark.skipif(
    importlib.util.find_spec("openai") is None,
    reason="needs the 'openai' extra: pip install 'distilabel_llm[openai]'",
)

MakeLLM = Callable[..., FakeLLM]
PRICED: Dict[str, Any] = {
    "input_cost_per_million_tokens": 100.0,
    "output_cost_per_million_tokens": 400.0,
    "generation_kwargs": {"max_new_tokens": 32},
}


def _rows(count: int) -> List[Dict[str, Any]]:
    return [{"input": f"Question number {i}?"} for i in range(count)]


def _written_cost(rows: List[Dict[str, Any]]) -> float:
    """What the rows of a checkpoint cost, generations and labels, as their statistics say."""
    total = 0.0
    for row in rows:
        for column in ("generation_statistics", "labelling_statistics"):
            total += sum((row.get(column) or {}).get("cost") or [])
    return total


def test_each_rows_statistics_carry_its_cost_and_the_summary_its_models(
    make_llm: MakeLLM,
) -> None:
    writer = make_llm(model_name="writer", **PRICED)
    judge = make_llm(LengthRatingTask(), model_name="judge", **PRICED)
    pipeline = Pipeline(generator=writer, labeller=judge)
    rows = pipeline.generate(_rows(6), num_generations=2, display_progress_bar=False)
    for row in rows:
        stats = row["generation_statistics"]
        assert len(stats["cost"]) == 2
        for cost, prompt, output in zip(
            stats["cost"], stats["input_tokens"], stats["output_tokens"]
        ):
            assert cost == pytest.approx((prompt * 100 + output * 400) / 1e6)
        assert row["labelling_statistics"]["cost"][0] > 0
    stats = pipeline.stats
    assert stats is not None and set(stats.cost_by_model) == {"writer", "judge"}
    assert stats.cost == pytest.approx(_written_cost(rows))
    console = Console(record=True, width=160, file=io.StringIO())
    console.print(summary_table(stats, writer))
    summary = " ".join(console.export_text().split())
    assert "Cost" in summary
    assert re.search(r"writer\W+12\W.*\$0\.\d{4}", summary)
    assert re.search(r"cost \$0\.\d{4} \(writer \$0\.\d{4}, judge \$0\.\d{4}\)", summary)


def test_a_model_without_prices_has_an_unknown_cost_not_zero(make_llm: MakeLLM) -> None:
    pipeline = Pipeline(generator=make_llm())
    rows = pipeline.generate(_rows(2), display_progress_bar=False)
    assert "cost" not in rows[0]["generation_statistics"]
    assert pipeline.stats is not None and pipeline.stats.cost is None
    console = Console(record=True, width=160, file=io.StringIO())
    console.print(summary_table(pipeline.stats, None))
    assert "Cost" not in console.export_text() and "cost" not in console.export_text()


def test_the_progress_line_shows_the_spend_as_it_grows(make_llm: MakeLLM) -> None:
    console = Console(file=io.StringIO(), force_terminal=False, width=200)
    Pipeline(generator=make_llm(**PRICED)).generate(
        _rows(20), batch_size=2, console=console, max_budget=5.0
    )
    lines = console.file.getvalue().splitlines()  # type: ignore[attr-defined]
    spends = [float(m.group(1)) for line in lines if (m := re.search(r"spent \$([\d.]+) of", line))]
    assert len(spends) >= 2 and spends == sorted(spends) and spends[0] < spends[-1]
    assert lines[-1].startswith("Generating: 20/20 rows (100%)") and "of $5.00" in lines[-1]

    console = Console(record=True, force_terminal=True, width=160, file=io.StringIO())
    Pipeline(generator=make_llm(**PRICED)).generate(_rows(4), console=console)  # no budget
    assert re.search(r"Generating\s.*4/4 rows\s.*spent \$0\.\d{4}\s", console.export_text())


@pytest.mark.parametrize(
    ("generator", "labeller", "message"),
    [
        ({}, None, r"the generator's is not\. FakeLLM 'fake' has no prices.*"
         r"input_cost_per_million_tokens=\.\.\. and output_cost_per_million_tokens=\.\.\."),
        (PRICED, {}, r"the labeller's is not\. FakeLLM 'judge' has no prices"),
        ({**PRICED, "generation_kwargs": {}}, None, r"has no `max_new_tokens`"),
    ],
)  # fmt: skip
def test_a_budget_whose_cost_cannot_be_bounded_is_refused_before_any_work(
    make_llm: MakeLLM, tmp_path: Path, generator, labeller, message: str
) -> None:
    writer = make_llm(**generator)
    judge = (
        make_llm(LengthRatingTask(), model_name="judge", **labeller)
        if labeller is not None
        else None
    )
    checkpoint = tmp_path / "out.jsonl"
    with pytest.raises(BudgetError, match=message):
        Pipeline(generator=writer, labeller=judge).generate(
            _rows(4), checkpoint=checkpoint, display_progress_bar=False, max_budget=10.0
        )
    assert writer.calls == 0 and not checkpoint.exists()


def test_the_budget_stops_the_job_and_a_larger_one_does_exactly_the_rest(
    make_llm: MakeLLM, tmp_path: Path
) -> None:
    checkpoint = tmp_path / "out.jsonl"
    rows = _rows(40)
    writer = make_llm(num_threads=4, latency=0.01, **PRICED)  # threaded: batches overlap
    budget = 1.5 * writer.max_cost(rows[:4])
    with pytest.raises(BudgetExhaustedError) as stopped:
        Pipeline(generator=writer).generate(
            rows, batch_size=4, checkpoint=checkpoint, display_progress_bar=False,
            max_budget=budget,
        )  # fmt: skip
    written = read_rows(checkpoint)
    assert 0 < len(written) < 40  # a prefix of the input
    assert _written_cost(written) <= budget
    error = stopped.value
    assert isinstance(error, PipelineError) and error.rows == written
    assert error.pending == 40 - len(written) and error.spent <= budget
    # Batches that did not fit were halved: it stopped only when the next row alone did not.
    assert error.spent + writer.max_cost(rows[len(written) : len(written) + 1]) > budget
    assert f"{error.pending} rows are left pending in {checkpoint}" in str(error)
    assert "run the job again with a larger `max_budget`" in str(error)

    pipeline = Pipeline(generator=writer)
    finished = pipeline.generate(
        rows, batch_size=4, checkpoint=checkpoint, display_progress_bar=False, max_budget=100.0
    )
    assert pipeline.stats is not None
    assert pipeline.stats.rows_resumed == len(written) and pipeline.stats.rows_done == error.pending
    assert [row["input"] for row in read_rows(checkpoint)] == [row["input"] for row in rows]
    assert finished[: len(written)] == written


def test_with_a_labeller_the_budget_keeps_every_saved_row_labelled(
    make_llm: MakeLLM, tmp_path: Path
) -> None:
    checkpoint = tmp_path / "out.jsonl"
    rows = _rows(24)
    writer = make_llm(model_name="writer", **PRICED)
    judge = make_llm(LengthRatingTask(), model_name="judge", **PRICED)
    pipeline = Pipeline(generator=writer, labeller=judge)
    pipeline.generate(rows, num_generations=2, batch_size=2, display_progress_bar=False)
    assert pipeline.stats is not None and pipeline.stats.cost is not None
    budget = pipeline.stats.cost / 2  # what the whole job costs, halved
    with pytest.raises(BudgetExhaustedError):
        pipeline.generate(
            rows, num_generations=2, batch_size=2, checkpoint=checkpoint,
            display_progress_bar=False, max_budget=budget,
        )  # fmt: skip
    written = read_rows(checkpoint)
    assert 0 < len(written) < 24 and _written_cost(written) <= budget
    assert all(row["labelling_model"] == "judge" and row["error"] is None for row in written)
    assert pipeline.stats is not None and pipeline.stats.cost == pytest.approx(
        _written_cost(written)
    )
    pipeline.generate(
        rows, num_generations=2, batch_size=2, checkpoint=checkpoint,
        display_progress_bar=False, max_budget=100.0,
    )  # fmt: skip
    assert len(read_rows(checkpoint)) == 24


@needs_openai
def test_64_requests_in_flight_never_exceed_the_budget(tmp_path: Path) -> None:
    from distilabel_llm.llm.backends.openai import OpenAILLM

    checkpoint = tmp_path / "out.jsonl"
    rows = _rows(512)
    with fault_server_module().FaultServer() as server:
        # The first 64 requests are answered only once all 64 are in flight together; later
        # ones at once (the batches shrink as the budget runs out).
        server.hold_until_concurrent(64, action=lambda: server.hold_until_concurrent(1))
        llm = OpenAILLM(
            TextGenerationTask(), model="fault-model", base_url=server.url, api_key="k",
            max_new_tokens=16, max_concurrency=64,
            input_cost_per_million_tokens=150.0, output_cost_per_million_tokens=600.0,
        )  # fmt: skip
        with llm:
            batch_worst = llm.max_cost(rows[:64])
            assert batch_worst is not None
            budget = 1.05 * batch_worst  # the first batch fits; the job does not
            with pytest.raises(BudgetExhaustedError) as stopped:
                Pipeline(generator=llm).generate(
                    rows, batch_size=64, checkpoint=checkpoint, display_progress_bar=False,
                    max_budget=budget,
                )  # fmt: skip
            assert server.max_in_flight == 64
            written = read_rows(checkpoint)
            sent = len(server.requests())
            assert len(written) == sent and 64 < sent < 512
            assert _written_cost(written) <= budget
            assert stopped.value.spent == pytest.approx(_written_cost(written))
            assert stopped.value.pending == 512 - sent
            assert stopped.value.spent + llm.max_cost(rows[sent : sent + 1]) > budget

            Pipeline(generator=llm).generate(
                rows, batch_size=64, checkpoint=checkpoint, display_progress_bar=False,
                max_budget=100 * budget,
            )  # fmt: skip
        assert len(server.requests()) == 512  # the rerun sent exactly the rows left
    assert [row["generations"] for row in read_rows(checkpoint)] == [
        [f"echo 0: {row['input']}"] for row in rows
    ]


@needs_openai
def test_the_cli_exits_with_a_code_of_its_own_when_the_budget_stops_the_job(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from distilabel_llm.llm.backends.openai import OpenAILLM

    prompts = tmp_path / "in.jsonl"
    prompts.write_text("".join(json.dumps(row) + "\n" for row in _rows(40)), encoding="utf-8")
    out = tmp_path / "out.jsonl"
    prices = ["--input-cost-per-million-tokens", "150", "--output-cost-per-million-tokens", "600"]
    with fault_server_module().FaultServer() as server:
        with OpenAILLM(
            TextGenerationTask(), model="fault-model", base_url=server.url, api_key="k",
            max_new_tokens=16,
            input_cost_per_million_tokens=150, output_cost_per_million_tokens=600,
        ) as llm:  # fmt: skip
            budget = 1.05 * llm.max_cost(_rows(4))
        job = [
            "generate", "--input", str(prompts), "--output", str(out),
            "--backend", "openai", "--model", "fault-model", "--base-url", server.url,
            "--api-key", "k", "--no-progress", "--max-concurrency", "4", "--batch-size", "4",
            "--max-new-tokens", "16", *prices,
        ]  # fmt: skip
        code = main([*job, "--max-budget", str(budget)])
        captured = capsys.readouterr()
        assert code == 4, captured
        err = " ".join(captured.err.split())
        assert f"rows are left pending in {out}" in err and "--max-budget" in err
        assert "Cost" in captured.out  # the summary, with the cost per model
        assert 0 < len(read_rows(out)) < 40
        assert main([*job, "--max-budget", "100"]) == 0
    assert len(read_rows(out)) == 40


def test_cli_budget_flags_that_cannot_work_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prompts = tmp_path / "in.jsonl"
    prompts.write_text(json.dumps({"input": "hi"}) + "\n", encoding="utf-8")
    base = ["generate", "--input", str(prompts), "--output", str(tmp_path / "o.jsonl")]
    openai_job = [*base, "--backend", "openai", "--model", "m"]

    def usage_error(argv: List[str]) -> str:
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2
        return " ".join(capsys.readouterr().err.split())

    error = usage_error([*openai_job, "--max-budget", "5"])
    assert "--max-budget needs the generator's prices: add --input-cost-per-million-" in error
    error = usage_error([*openai_job, "--input-cost-per-million-tokens", "1"])
    assert "give both --input-cost-per-million-tokens and --output-cost-per-" in error
    local = [*base, "--backend", "llama-cpp", "--model", "m.gguf"]
    error = usage_error([*local, "--input-cost-per-million-tokens", "1",
                         "--output-cost-per-million-tokens", "1"])  # fmt: skip
    assert "the generator's llama-cpp backend runs a local one" in error
    error = usage_error([*openai_job, "--max-budget", "0"])
    assert "must be a number above 0" in error
    assert not (tmp_path / "o.jsonl").exists()


def test_a_model_in_another_process_cannot_be_held_to_a_budget() -> None:
    from distilabel_llm.llm import ProcessLLM

    refused = pytest.raises(BudgetError, match="ProcessLLM cannot bound what a call costs")
    with ProcessLLM(TextGenerationTask(), FakeLLM) as llm, refused:
        Pipeline(generator=llm).generate(_rows(2), display_progress_bar=False, max_budget=1)


def test_the_dry_run_is_paid_from_the_budget(make_llm: MakeLLM) -> None:
    writer = make_llm(**PRICED)
    rows = _rows(4)
    with pytest.raises(BudgetError, match="cannot cover the worst case of the dry run"):
        Pipeline(generator=writer).generate(
            rows, display_progress_bar=False, skip_dry_run=False,
            max_budget=0.5 * writer.max_cost(rows[:1]),
        )  # fmt: skip
    assert writer.calls == 0
    pipeline = Pipeline(generator=writer)
    pipeline.generate(rows, display_progress_bar=False, skip_dry_run=False, max_budget=1.0)
    assert writer.calls == 2  # the dry run, then the batch
    assert pipeline.stats is not None and pipeline.stats.rows_done == 4
