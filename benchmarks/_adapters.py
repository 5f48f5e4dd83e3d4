"""Turn each older benchmark's own rows into the runner's summary rows (`benchmarks._summary`).

Benchmarks written for the runner (startup, memory, scaling, e2e) return summary rows already.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List

from benchmarks._summary import judge, skipped_row, summary_row

__all__ = ["to_summary"]

Rows = List[Dict[str, Any]]


def _futures(rows: Rows) -> Rows:
    out = []
    for row in rows:
        out.append(
            summary_row(
                "futures",
                f"when_all_complete, {row['futures']:,} futures",
                "s",
                [1e-3 * value for value in row.get("total_ms_samples") or [row["total_ms"]]],
                reference=[
                    1e-3 * value
                    for value in row.get("floor_total_ms_samples") or [row["floor_total_ms"]]
                ],
                reference_kind="stdlib floor",
                legacy=None if row["legacy_total_ms"] is None else 1e-3 * row["legacy_total_ms"],
                target="< 50 ms in total" if row["futures"] == 20_000 else None,
                note="legacy: its O(n^2) algorithm, in-process" if row["legacy_total_ms"] else None,
            )
        )
        if row["futures"] == 20_000:  # the target names the total, combine call included
            judge(out[-1], "<", 0.050, on="ours")
    return out


def _with_range(row: Dict[str, Any], runs: int, low: float, high: float, ideal: float) -> None:
    row.update(
        runs=runs, ours_min=low, ours_max=high, ratio_min=low / ideal, ratio_max=high / ideal
    )


def _threads(rows: Rows) -> Rows:
    out = []
    for row in rows:
        summary = summary_row(
            "threads",
            f"LLM(num_threads={row['threads']}), {row['requests']} x "
            f"{1e3 * row['latency_s']:.0f} ms requests",
            "s",
            [row["wall_s"]],
            reference=[row["ideal_s"]],
            reference_kind="ideal",
            legacy=row["legacy_wall_s"],
            target="<= 1.10x ideal",
            note=f"bare ThreadPoolExecutor: {row['floor_ratio']:.2f}x ideal",
        )
        _with_range(summary, row["repeat"], row["wall_s_min"], row["wall_s_max"], row["ideal_s"])
        judge(summary, "<=", 1.10)
        out.append(summary)
    return out


def _process(rows: Rows) -> Rows:
    out = []
    for row in rows:
        summary = summary_row(
            "process",
            f"ProcessLLM {row['workload']}",
            row["unit"],
            [row["ours"]],
            legacy=row["legacy"],
            target=row["target"],
        )
        summary.update(ours_min=row["ours_min"], ours_max=row["ours_max"], runs=row["repeat"])
        if row.get("goal"):  # (operator, bound) on our per-run figure
            summary["samples"] = row["samples"]
            judge(summary, *row["goal"], on="ours")
        out.append(summary)
    return out


def _pool(rows: Rows) -> Rows:
    out = []
    for row in rows:
        summary = summary_row(
            "pool",
            f"LLMPool {row['strategy']}, {row['workload']}: members {row['members_ms']} ms, "
            f"{row['rows']} rows x {row['num_generations']}",
            "s",
            [row["wall_s"]],
            reference=[row["ideal_s"]],
            reference_kind="ideal",
            legacy=row["legacy_wall_s"],
            target=None if row["target_ratio"] is None else f"<= {row['target_ratio']:.2f}x ideal",
            note="bound by its slowest member by design" if row["strategy"] == "spread" else None,
        )
        _with_range(summary, row["repeat"], row["wall_s_min"], row["wall_s_max"], row["ideal_s"])
        if row.get("wall_s_samples"):
            summary["ratio_samples"] = [value / row["ideal_s"] for value in row["wall_s_samples"]]
        if row["target_ratio"] is not None:
            judge(summary, "<=", row["target_ratio"])
        out.append(summary)
    return out


def _backends(rows: Rows) -> Rows:
    out = []
    for row in rows:
        workload = f"{row['backend']} through our API, batch {row['batch']}"
        if "skipped" in row:
            out.append(skipped_row("backends", row["skipped"], workload))
            continue
        target = row["target_overhead_pct"]
        summary = summary_row(
            "backends",
            f"{workload}, {row['tokens']} tokens",
            "s",
            row.get("ours_s_samples") or [row["ours_s"]],
            reference=row.get("raw_s_samples") or [row["raw_s"]],
            reference_kind="raw library",
            target=f"overhead < {target:g}% (wall time)",
            note=f"{row['ours_tokens_per_s']:,.0f} vs {row['raw_tokens_per_s']:,.0f} tok/s",
        )
        # Wall time, the figure the row shows, ratio taken pair by pair (interleaved runs).
        judge(summary, "<", 1 + target / 100)
        out.append(summary)
    return out


_ADAPTERS: Dict[str, Callable[[Rows], Rows]] = {
    "futures": _futures,
    "threads": _threads,
    "process": _process,
    "pool": _pool,
    "backends": _backends,
}


def to_summary(name: str, rows: Rows) -> Rows:
    """Summary rows for benchmark `name`'s own rows (returned as they are when already so)."""
    adapter = _ADAPTERS.get(name)
    return rows if adapter is None else adapter(rows)
