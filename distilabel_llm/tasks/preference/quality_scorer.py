"""Deita's quality scorer: rank a set of responses to one instruction by quality."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional

from distilabel_llm.tasks._parsing import indexed_items, indexed_scores
from distilabel_llm.tasks.base import PromptTemplate
from distilabel_llm.tasks.preference.base import PreferenceTaskNoRationale
from distilabel_llm.tasks.prompt import Prompt

__all__ = ["QualityScorerTask"]


@dataclass
class QualityScorerTask(PreferenceTaskNoRationale):
    """Scores the quality of each of a row's `generations` for its `input`, from 1 to 6.

    The model answers one line per response, `[N] Score: <score>` (`[Response N]` is read
    too); outputs `rating`, a list of numbers in the order of the generations.

    Args:
        system_prompt: the system turn sent with every prompt.
        template: the user turn (see `Task`), from `input`, `generations` and `items`.
    """

    system_prompt: str = "You judge how well responses serve the instruction they answer."
    template: Optional[PromptTemplate] = None

    def generate_prompt(self, input: str, generations: List[str], **_: Any) -> Prompt:
        items = indexed_items(generations)
        default = (
            "Score the quality of each response to the instruction below, from 1 (useless) to "
            "6 (excellent): helpfulness, accuracy, depth and clarity all count.\n\n"
            f"Instruction: {input}\n\n{items}\n\n"
            "Write one line per response, in order: [N] Score: <1-6>"
        )
        return self._prompt(default, input=input, generations=generations, items=items)

    def parse_output(self, output: str) -> Dict[str, Any]:
        return {"rating": indexed_scores(output, type(self).__name__)}
