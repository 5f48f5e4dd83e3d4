"""The benchmark harness's judging and publishing: figures come from a saved run, not by hand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks._summary import judge
from benchmarks.publish import END, PLOT_NAME, START, main, plot, render

RUN = Path(__file__).parent / "benchmarks_fixtures" / "run.json"


def test_a_saved_run_renders_the_same_markdown_every_time(tmp_path: Path) -> None:
    run = json.loads(RUN.read_text(encoding="utf-8"))
    text = render(run)
    assert text == render(json.loads(RUN.read_text(encoding="utf-8")))
    assert "commit `0123456789ab-dirty`" in text and "Test CPU (2 cores)" in text
    assert "`python -m benchmarks --quick --only futures`" in text
    assert (
        "| futures | when_all_complete, 20,000 futures | 45.0 ms (40.0 ms..52.0 ms), 3 runs" in text
    )
    assert "< 50 ms in total: within noise |" in text
    assert "| backends | (all) | skipped: torch not installed |" in text
    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\nProse.\n\n{START}\nold figures\n{END}\n\nMore.\n")
    assert main([str(RUN), "--readme", str(readme), "--check"]) == 1
    assert main([str(RUN), "--readme", str(readme)]) == 0
    written = readme.read_text()
    assert written == f"# Title\n\nProse.\n\n{START}\n{text}\n{END}\n\nMore.\n"
    svg = (tmp_path / PLOT_NAME).read_text()
    assert svg.startswith("<svg") and svg == plot(run) and "futures: when_all_complete" in svg
    assert main([str(RUN), "--readme", str(readme), "--check"]) == 0  # idempotent


@pytest.mark.parametrize(
    ("ratios", "verdict"),
    [
        ([0.98, 1.0, 1.01, 1.02, 1.03], "met"),
        ([0.87, 0.95, 1.04, 1.10, 1.28], "within noise"),  # a median inside, the runs not
        ([1.06, 1.07, 1.08], "MISSED"),
    ],
)
def test_a_target_is_met_only_when_the_runs_spread_supports_it(ratios, verdict) -> None:
    row = judge({"ratio": sorted(ratios)[len(ratios) // 2], "ratio_samples": ratios}, "<=", 1.05)
    assert row["verdict"] == verdict and row["met"] == (verdict == "met")
    floor = judge({"ours": 2.0, "samples": [1.9, 2.0, 2.1]}, ">=", 1.97, on="ours")
    assert floor["verdict"] == "within noise"


def test_the_readme_holds_the_published_run_as_rendered() -> None:
    """The README's table is `benchmarks/published-run.json` rendered, never edited by hand."""
    root = Path(__file__).resolve().parents[1]
    assert (
        main(
            [
                str(root / "benchmarks" / "published-run.json"),
                "--readme",
                str(root / "README.md"),
                "--check",
            ]
        )
        == 0
    )
