"""Helpers for tests that start processes: find a process's children, an LLM (or its load)
held at a gate."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List

from distilabel_llm.llm import LLM, LLMOutput
from distilabel_llm.testing import FakeLLM


def children_of(pid: int) -> List[int]:
    """Live (not zombie) children of `pid`, read from /proc."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


class GatedLLM(LLM):
    """Generates once a writer has opened and closed the FIFO at `gate`: the writer's `open`
    returns when a call is waiting there, and its `close` lets the call finish."""

    def __init__(self, task: Any, gate: str) -> None:
        super().__init__(task)
        self.gate = gate

    @property
    def model_name(self) -> str:
        return "gated"

    def _generate(
        self, inputs: List[Dict[str, Any]], num_generations: int = 1
    ) -> List[List[LLMOutput]]:
        with open(self.gate, encoding="utf-8") as gate:
            gate.read()  # returns when the writer closes its end
        prompts = self._generate_prompts(inputs)
        return [[self._output(prompt, "done")] * num_generations for prompt in prompts]


def gated_load(task: Any, gate: str) -> FakeLLM:
    """A model load held at the FIFO `gate`, as `GatedLLM`'s calls are: a writer's `open`
    returns once the child is loading, and its `close` lets the load finish."""
    with open(gate, encoding="utf-8") as waiting:
        waiting.read()  # returns when the writer closes its end
    return FakeLLM(task)
