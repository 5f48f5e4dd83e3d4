"""Deita's complexity scorer: rank a set of instructions by how demanding each is."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional

from distilabel_llm.tasks._parsing import indexed_items, indexed_scores
from distilabel_llm.tasks.base import PromptTemplate
from distilabel_llm.tasks.preference.base import PreferenceTaskNoRationale
from distilabel_llm.tasks.prompt import Prompt

__all__ = ["ComplexityScorerTask"]


@dataclass
class ComplexityScorerTask(PreferenceTaskNoRationale):
    """Scores the complexity of each of a row's `instructions` from 1 (simplest) to 6.

    The model answers one line per instruction, `[N] Score: <score>`; outputs `rating`, a list
    of numbers in the order of the instructions. It reads `instructions`, the column
    `EvolComplexityTask` and `SelfInstructTask` write (legacy's read `generations`).

    Args:
        system_prompt: the system turn sent with every prompt.
        template: the user turn (see `Task`), from `instructions` and `items` (numbered).
    """

    system_prompt: str = "You judge how hard instructions are to carry out well."
    template: Optional[PromptTemplate] = None

    def generate_prompt(self, instructions: List[str], **_: Any) -> Prompt:
        items = indexed_items(instructions)
        default = (
            "Score how complex and demanding each instruction below is, from 1 (trivial) to 6 "
            "(needs deep expertise and several steps of reasoning).\n\n"
            f"{items}\n\nWrite one line per instruction, in order: [N] Score: <1-6>"
        )
        return self._prompt(default, instructions=instructions, items=items)

    def parse_output(self, output: str) -> Dict[str, Any]:
        return {"rating": indexed_scores(output, type(self).__name__)}

    @property
    def input_args_names(self) -> List[str]:
        return ["instructions"]
