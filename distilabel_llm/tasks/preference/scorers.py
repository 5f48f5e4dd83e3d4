"""Evol-Instruct's scorers: rank instructions by complexity, or responses by quality.

Both ask for one line per item, `[N] Score: <score>`, and output `rating`, a list of numbers
in the order of the items.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

from distilabel_llm.errors import OutputParsingError
from distilabel_llm.tasks.base import PromptTemplate, Task
from distilabel_llm.tasks.prompt import Prompt

__all__ = ["ComplexityScorerTask", "QualityScorerTask"]

_SCORE_LINE = re.compile(r"^\s*\[(\d+)\]\s*Score\s*:\s*(-?\d+(?:\.\d+)?)", re.MULTILINE | re.I)


def _scores(output: str, owner: str) -> List[float]:
    """The scores of items 1..N, N the highest item scored; every one must be there."""
    found = {int(index): float(score) for index, score in _SCORE_LINE.findall(output)}
    missing = [i for i in range(1, max(found, default=0) + 1) if i not in found]
    if not found or missing:
        raise OutputParsingError(
            f"{owner} expected a line '[N] Score: <score>' for every item"
            f"{f' (none for {missing})' if missing else ''} in the model's output: {output!r}"
        )
    return [found[i] for i in range(1, len(found) + 1)]


def _items(items: List[str]) -> str:
    return "\n".join(f"[{i}] {item}" for i, item in enumerate(items, start=1))


@dataclass
class ComplexityScorerTask(Task):
    """Scores the complexity of each of a row's `instructions` from 1 (simplest) to 6.

    Args:
        system_prompt: the system turn sent with every prompt.
        template: the user turn (see `Task`), from `instructions` and `items` (numbered).
    """

    system_prompt: str = "You judge how hard instructions are to carry out well."
    template: Optional[PromptTemplate] = None

    def generate_prompt(self, instructions: List[str], **_: Any) -> Prompt:
        items = _items(instructions)
        default = (
            "Score how complex and demanding each instruction below is, from 1 (trivial) to 6 "
            "(needs deep expertise and several steps of reasoning).\n\n"
            f"{items}\n\nWrite one line per instruction, in order: [N] Score: <1-6>"
        )
        return self._prompt(default, instructions=instructions, items=items)

    def parse_output(self, output: str) -> Dict[str, Any]:
        return {"rating": _scores(output, type(self).__name__)}

    @property
    def input_args_names(self) -> List[str]:
        return ["instructions"]

    @property
    def output_args_names(self) -> List[str]:
        return ["rating"]


@dataclass
class QualityScorerTask(Task):
    """Scores the quality of each of a row's `generations` for its `input`, from 1 to 6.

    Args:
        system_prompt: the system turn sent with every prompt.
        template: the user turn (see `Task`), from `input`, `generations` and `items`.
    """

    system_prompt: str = "You judge how well responses serve the instruction they answer."
    template: Optional[PromptTemplate] = None

    def generate_prompt(self, input: str, generations: List[str], **_: Any) -> Prompt:
        items = _items(generations)
        default = (
            "Score the quality of each response to the instruction below, from 1 (useless) to "
            "6 (excellent): helpfulness, accuracy, depth and clarity all count.\n\n"
            f"Instruction: {input}\n\n{items}\n\n"
            "Write one line per response, in order: [N] Score: <1-6>"
        )
        return self._prompt(default, input=input, generations=generations, items=items)

    def parse_output(self, output: str) -> Dict[str, Any]:
        return {"rating": _scores(output, type(self).__name__)}

    @property
    def input_args_names(self) -> List[str]:
        return ["input", "generations"]

    @property
    def output_args_names(self) -> List[str]:
        return ["rating"]
