"""The table a finished job prints: rows done and failed, and each model's throughput."""

from __future__ import annotations

import os
from pathlib import Path
from typing import List, Optional, Tuple

from rich.markup import escape
from rich.table import Table

from distilabel_llm.llm.core.contract import BaseLLM
from distilabel_llm.llm.core.cost import format_usd
from distilabel_llm.pipeline.stats import JobStats

__all__ = ["display_name", "summary_table"]


def display_name(name: str) -> str:
    """A model or pool member name with each file path cut to its last part or two.

    Backends name local models by their path, which would fill a progress line.
    """
    words = []
    for word in name.split(" "):
        if os.sep in word and len(word) > 24:
            parts = Path(word).parts
            word = parts[-1] if len(parts[-1]) > 8 else os.path.join(*parts[-2:])
        words.append(word)
    return " ".join(words)


def summary_table(stats: JobStats, generator: Optional[BaseLLM] = None) -> Table:
    """A rich table of what the job did, one line per pool member (or per model).

    Tokens per second are over the job's wall time, so a pool's lines add up to its total;
    each pool member's tokens are the ones it made, its "busy" share is the part of the wall
    time it had work in flight and "idle" the seconds it had none (waiting on the slowest
    member, or on the job). A "Cost" column gives what each model cost, when its prices are
    known ("?" where they are not). The caption gives the share of the positions a batching
    backend computed that were padding, and the job's cost by model, the labeller's included.

    Args:
        stats: `Pipeline.stats` after the job.
        generator: the job's generator; a pool gets one line per member.
    """
    table = Table(
        title=(
            f"{stats.rows_done} rows generated in {stats.elapsed_s:.1f}s"
            f" ({stats.rows_resumed} resumed, {stats.rows_failed} failed)"
        ),
        title_justify="left",
        caption=_caption(stats),
        caption_justify="left",
    )
    table.add_column("Generator")
    table.add_column("Generations", justify="right")
    table.add_column("Output tokens", justify="right")
    table.add_column("Tokens/s", justify="right")
    busy = stats.busy_s_by_member if generator is not None and generator.members else {}
    if busy:
        table.add_column("Busy", justify="right")
        table.add_column("Idle", justify="right")
    # A pool's lines are its members, whose costs add up by model: those are in the caption.
    costs = stats.cost_by_model if not busy and not _is_pool(generator) else {}
    if costs:
        table.add_column("Cost", justify="right")
    elapsed = max(stats.elapsed_s, 1e-9)
    for name, generations, tokens in _lines(stats, generator):
        cells = [
            escape(display_name(name)),
            f"{generations:,}",
            f"{tokens:,.0f}",
            f"{tokens / elapsed:,.1f}",
        ]
        if busy:
            busy_s = min(busy.get(name, 0.0), elapsed)
            cells += [f"{busy_s / elapsed:.0%}", f"{elapsed - busy_s:.1f}s"]
        if costs:
            cells.append(format_usd(costs[name]) if name in costs else "?")
        table.add_row(*cells)
    return table


def _caption(stats: JobStats) -> str:
    caption = f"{sum(stats.generations_by_model.values()):,} generations with text"
    shares = {model: stats.padding_share(model) for model in stats.padding_tokens_by_model}
    if len(stats.generations_by_model) == 1 and shares:
        caption += f"; padding: {next(iter(shares.values())):.0%} of the positions computed"
    elif shares:  # name the models that batch, which are not all of them
        each = ", ".join(f"{display_name(m)} {share:.0%}" for m, share in shares.items())
        caption += f"; padding (share of the positions computed): {each}"
    if stats.cost is not None:
        caption += f"; cost {format_usd(stats.cost)}"
        if len(stats.cost_by_model) > 1:
            each = ", ".join(
                f"{display_name(m)} {format_usd(cost)}" for m, cost in stats.cost_by_model.items()
            )
            caption += f" ({each})"
    return escape(caption)


def _is_pool(generator: Optional[BaseLLM]) -> bool:
    return generator is not None and bool(generator.members)


def _lines(stats: JobStats, generator: Optional[BaseLLM]) -> List[Tuple[str, int, float]]:
    members = generator.members if generator is not None else ()
    if not members or not stats.generations_by_member:
        return [
            (model, generations, float(stats.output_tokens_by_model.get(model, 0)))
            for model, generations in stats.generations_by_model.items()
        ]
    return [
        (
            name,
            stats.generations_by_member.get(name, 0),
            float(stats.output_tokens_by_member.get(name, 0)),
        )
        for name in generator.member_names  # type: ignore[union-attr]
    ]
