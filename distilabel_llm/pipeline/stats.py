"""`JobStats`: what one run of a pipeline did, for its summary."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from distilabel_llm.llm.core.outputs import LLMOutput, output_tokens

__all__ = ["JobStats"]


@dataclass
class JobStats:
    """What one `Pipeline.generate` run did; `Pipeline.stats` after the run."""

    rows_total: int = 0
    rows_resumed: int = 0
    rows_done: int = 0
    rows_failed: int = 0
    elapsed_s: float = 0.0
    generations_by_model: Dict[str, int] = field(default_factory=dict)
    output_tokens_by_model: Dict[str, int] = field(default_factory=dict)
    input_tokens_by_model: Dict[str, int] = field(default_factory=dict)
    padding_tokens_by_model: Dict[str, int] = field(default_factory=dict)
    """Positions each model computed that were neither prompt nor output (a batching backend's
    padding; see `TokenStatistics.padding_tokens`); absent for backends that report none."""
    generations_by_member: Dict[str, int] = field(default_factory=dict)
    output_tokens_by_member: Dict[str, int] = field(default_factory=dict)
    busy_s_by_member: Dict[str, float] = field(default_factory=dict)
    """Seconds each pool member had work in flight during the job: against `elapsed_s`, how
    busy it was (a member well under the others waited on the slowest)."""
    cost_by_model: Dict[str, float] = field(default_factory=dict)
    """USD each model cost (the generator's and the labeller's), from its outputs' `cost`;
    a model whose prices are unknown is absent, not 0."""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def count_outputs(self, outputs: List[LLMOutput]) -> None:
        """Counts one row's outputs that have text, by model: generations and tokens."""
        for output in outputs:
            if output["raw_output"] is None:
                continue
            model = output["model_name"]
            _add(self.generations_by_model, model, 1)
            _add(self.output_tokens_by_model, model, output_tokens([output]))
            statistics = output.get("statistics") or {}
            _add(self.input_tokens_by_model, model, statistics.get("input_tokens") or 0)
            if "padding_tokens" in statistics:
                _add(self.padding_tokens_by_model, model, statistics["padding_tokens"])

    def padding_share(self, model: str) -> float:
        """The share of the positions `model` computed that were padding (0 if unreported)."""
        padding = self.padding_tokens_by_model.get(model, 0)
        computed = (
            padding
            + self.input_tokens_by_model.get(model, 0)
            + self.output_tokens_by_model.get(model, 0)
        )
        return padding / computed if computed else 0.0

    @property
    def cost(self) -> Optional[float]:
        """USD the job cost, over the models whose cost is known; None when none is."""
        return sum(self.cost_by_model.values()) if self.cost_by_model else None

    def count_cost(self, model: str, cost: float) -> None:
        """Counts `cost` USD spent on `model` (from any thread)."""
        with self._lock:
            self.cost_by_model[model] = self.cost_by_model.get(model, 0.0) + cost

    def count_member(self, name: str, advance: int, tokens: int = 0) -> None:
        """Counts `advance` generations, of `tokens` output tokens, done by the pool member
        `name` (from any thread)."""
        with self._lock:
            _add(self.generations_by_member, name, advance)
            _add(self.output_tokens_by_member, name, tokens)


def _add(counts: Dict[str, int], key: str, value: int) -> None:
    counts[key] = counts.get(key, 0) + value
