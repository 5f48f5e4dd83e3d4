"""One row shape for the runner's summary table, shared by every benchmark, and its rendering.

A summary row compares our figure with a reference (the ideal, or the raw backend doing the
same work) and with legacy `distilabel==0.6.0` where it can run the same workload:

    {"benchmark", "workload", "unit", "ours", "ours_min", "ours_max",
     "reference", "reference_kind", "ratio", "ratio_min", "ratio_max",
     "legacy", "legacy_ratio", "target", "met", "note", "skipped"}

`ratio` is ours / reference, the median of the ratios taken run by run when the benchmark
measured both sides in the same process (else the ratio of the medians). `legacy_ratio` is
ours / legacy; legacy runs in its own venv, so that one is always a ratio of medians.

Targets are judged in one place, `judge`: on the quantity the target names (the per-run
ratios, or our own per-run figure), "met" only when the run-by-run spread supports it (the
upper quartile within a "<=" bound, the lower quartile within a ">=" one), "within noise" when
only the median is, else "MISSED".
"""

from __future__ import annotations

import math
import statistics
from typing import Any, Dict, Iterable, List, Optional, Sequence

__all__ = [
    "COLUMNS",
    "cells",
    "judge",
    "markdown_table",
    "ratio_stats",
    "skipped_row",
    "summary_row",
]

COLUMNS = (
    "benchmark",
    "workload",
    "ours: median (min..max)",
    "ideal / raw",
    "ours ÷ ideal/raw",
    "legacy 0.6.0",
    "ours ÷ legacy",
    "target",
)


def ratio_stats(ours: Sequence[float], reference: Sequence[float]) -> Dict[str, float]:
    """Median, min and max of ours / reference taken pair by pair (runs made side by side)."""
    ratios = [a / b for a, b in zip(ours, reference) if b]
    if not ratios:
        return {}
    return {
        "ratio": statistics.median(ratios),
        "ratio_min": min(ratios),
        "ratio_max": max(ratios),
        "ratio_samples": ratios,
    }


_OPERATORS = {
    "<": lambda value, bound: value < bound,
    "<=": lambda value, bound: value <= bound,
    ">": lambda value, bound: value > bound,
    ">=": lambda value, bound: value >= bound,
}


def _quartiles(values: Sequence[float]) -> Sequence[float]:
    if len(values) < 2:
        return [values[0]] * 3
    return statistics.quantiles(values, n=4, method="inclusive")


def judge(row: Dict[str, Any], operator: str, bound: float, on: str = "ratio") -> Dict[str, Any]:
    """Judges `row`'s target from its per-run values; sets `verdict` and `met`; returns the row.

    Args:
        row: a summary row.
        operator: "<", "<=", ">" or ">=": how the values must compare with `bound`.
        bound: the target's figure, in the unit of the values judged.
        on: "ratio" (the per-run ratios to the reference; the ratio alone when there are no
            pairs), "ours" (our per-run figure) or "legacy_ratio" (one ratio of medians).
    """
    if on == "ratio":
        values = row.get("ratio_samples") or [row["ratio"]]
    elif on == "ours":
        values = row.get("samples") or [row["ours"]]
    else:
        values = [row[on]]
    low, median, high = _quartiles(sorted(values))
    # The quartile on the side a miss lies: most runs must meet the target, not the median.
    worst = high if operator.startswith("<") else low
    holds = _OPERATORS[operator]
    if holds(worst, bound):
        verdict = "met"
    elif holds(median, bound):
        verdict = "within noise"
    else:
        verdict = "MISSED"
    row.update(verdict=verdict, met=verdict == "met", judged_on=on, judged_runs=len(values))
    return row


def summary_row(
    benchmark: str,
    workload: str,
    unit: str,
    ours: Sequence[float],
    *,
    reference: Optional[Sequence[float]] = None,
    reference_kind: Optional[str] = None,
    legacy: Optional[float] = None,
    target: Optional[str] = None,
    met: Optional[bool] = None,
    note: Optional[str] = None,
    **extra: Any,
) -> Dict[str, Any]:
    """Builds a summary row from per-run samples.

    Args:
        benchmark: the benchmark module's name.
        workload: what was run, in words.
        unit: the figures' unit (`s`, `req/s`, `MB`, `x`, ...).
        ours: our figure in each run.
        reference: the ideal or raw figure in each run, paired with `ours` (one value for a
            constant such as an ideal makespan).
        reference_kind: what the reference is: "ideal", "raw", "1 process", ...
        legacy: legacy distilabel 0.6.0's median on the same workload, if it ran.
        target: the goal in words, e.g. ">= 1.7x".
        met: whether the target was met.
        note: anything the reader needs to read the figure.
        **extra: more fields for the JSON output.
    """
    if not ours:
        raise ValueError(f"{benchmark}: {workload!r} has no samples.")
    row: Dict[str, Any] = {
        "benchmark": benchmark,
        "workload": workload,
        "unit": unit,
        "runs": len(ours),
        "ours": statistics.median(ours),
        "ours_min": min(ours),
        "ours_max": max(ours),
        "samples": list(ours),
        "reference": None,
        "reference_kind": reference_kind,
        "legacy": legacy,
        "legacy_ratio": None,
        "target": target,
        "met": met,
        "note": note,
    }
    if reference:
        paired = list(reference) if len(reference) == len(ours) else [reference[0]] * len(ours)
        row["reference"] = statistics.median(reference)
        row["reference_samples"] = list(reference)
        row.update(ratio_stats(ours, paired))
    if legacy:
        row["legacy_ratio"] = row["ours"] / legacy
    row.update(extra)
    return row


def skipped_row(benchmark: str, reason: str, workload: str = "(all)") -> Dict[str, Any]:
    """A row saying that a benchmark or one of its workloads did not run, and why."""
    return {"benchmark": benchmark, "workload": workload, "skipped": reason}


def _number(value: Optional[float], unit: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if unit == "s":
        return f"{value * 1e3:,.1f} ms" if value < 1 else f"{value:,.2f} s"
    if unit == "x":
        return f"{value:.2f}x"
    if unit == "%":
        return f"{value:+.1f}%"
    magnitude = abs(value)
    digits = 0 if magnitude >= 100 else 1 if magnitude >= 10 else 2
    return f"{value:,.{digits}f} {unit}"


def _times(value: float) -> str:
    return f"{value:.2f}x" if value >= 0.1 else f"{value:.4f}x"


def _ratio(value: Optional[float], low: Optional[float], high: Optional[float]) -> str:
    if value is None:
        return "—"
    if low is None or high is None or math.isclose(low, high, rel_tol=1e-9):
        return _times(value)
    return f"{_times(value)} ({low:.2f}..{high:.2f})"


def cells(row: Dict[str, Any]) -> List[str]:
    """The row's cells under `COLUMNS`, as text."""
    if "skipped" in row:
        return [row["benchmark"], row["workload"], f"skipped: {row['skipped']}", *[""] * 5]
    unit = row["unit"]
    ours = _number(row["ours"], unit)
    if row.get("runs", 1) > 1:
        ours += f" ({_number(row['ours_min'], unit)}..{_number(row['ours_max'], unit)})"
    ours += f", {row.get('runs', 1)} run{'s' if row.get('runs', 1) != 1 else ''}"
    reference = "—"
    if row.get("reference") is not None:
        reference = f"{_number(row['reference'], unit)} ({row.get('reference_kind') or 'ref'})"
    target = row.get("target") or "—"
    if row.get("verdict"):
        target += f": {row['verdict']}"
    elif row.get("met") is not None:  # judged by hand: every target should go through `judge`
        target += ": met" if row["met"] else ": MISSED"
    workload = row["workload"]
    if row.get("note"):
        workload += f" [{row['note']}]"
    return [
        row["benchmark"],
        workload,
        ours,
        reference,
        _ratio(row.get("ratio"), row.get("ratio_min"), row.get("ratio_max")),
        _number(row.get("legacy"), unit),
        "—" if not row.get("legacy_ratio") else _times(row["legacy_ratio"]),
        target,
    ]


def markdown_table(rows: Iterable[Dict[str, Any]]) -> str:
    """The summary as a GitHub markdown table."""

    def line(values: Sequence[str]) -> str:
        return "| " + " | ".join(value.replace("|", "\\|") for value in values) + " |"

    lines = [line(COLUMNS), line(["---"] * len(COLUMNS))]
    lines.extend(line(cells(row)) for row in rows)
    return "\n".join(lines)
