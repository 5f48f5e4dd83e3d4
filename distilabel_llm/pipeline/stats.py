"""`JobStats`: what one run of a pipeline did, for its summary."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Dict, List

from distilabel_llm.llm.outputs import LLMOutput, output_tokens

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
    generations_by_member: Dict[str, int] = field(default_factory=dict)
    output_tokens_by_member: Dict[str, int] = field(default_factory=dict)
    busy_s_by_member: Dict[str, float] = field(default_factory=dict)
    """Seconds each pool member had work in flight during the job: against `elapsed_s`, how
    busy it was (a member well under the others waited on the slowest)."""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def count_outputs(self, outputs: List[LLMOutput]) -> None:
        """Counts one row's outputs that have text, by model: generations and output tokens."""
        for output in outputs:
            if output["raw_output"] is None:
                continue
            model = output["model_name"]
            self.generations_by_model[model] = self.generations_by_model.get(model, 0) + 1
            self.output_tokens_by_model[model] = self.output_tokens_by_model.get(
                model, 0
            ) + output_tokens([output])

    def count_member(self, name: str, advance: int, tokens: int = 0) -> None:
        """Counts `advance` generations, of `tokens` output tokens, done by the pool member
        `name` (from any thread)."""
        with self._lock:
            self.generations_by_member[name] = self.generations_by_member.get(name, 0) + advance
            self.output_tokens_by_member[name] = self.output_tokens_by_member.get(name, 0) + tokens
