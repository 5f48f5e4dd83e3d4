"""Evol-Instruct: rewrite an instruction into a harder or a new one (WizardLM's method)."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Any, Dict, List, Literal, Optional

from distilabel_llm.errors import OutputParsingError
from distilabel_llm.tasks.base import PromptTemplate, Task
from distilabel_llm.tasks.prompt import Prompt

__all__ = ["EvolInstructTask", "EvolutionMethod"]

EvolutionMethod = Literal["constraints", "deepen", "concretize", "reasoning", "breadth"]

# How each method changes the instruction: our wording of Evol-Instruct's five evolutions.
_METHODS: Dict[str, str] = {
    "constraints": "Add one more constraint or requirement the answer must satisfy.",
    "deepen": "Ask about the same subject in more depth, so that a good answer goes further.",
    "concretize": "Replace general ideas with specific, concrete ones.",
    "reasoning": (
        "Make it need several explicit steps of reasoning, where it needed only one or two."
    ),
    "breadth": (
        "Write a brand-new instruction in the same domain, rarer in subject, of similar length "
        "and difficulty."
    ),
}
_LABEL = re.compile(
    r"^\s*(?:#*\s*)?(?:rewritten|new|evolved)\s+(?:instruction|prompt)\s*#*\s*:?", re.IGNORECASE
)


@dataclass
class EvolInstructTask(Task):
    """Evolves the row's `input` instruction with one Evol-Instruct method; outputs
    `instructions`, a list with the evolved instruction.

    Each prompt uses `evolution`, or, when None, a method drawn at random. An output that only
    repeats the instruction, or says it cannot, is refused as unparseable (Evol-Instruct's
    elimination step), so such rows keep `parsed_output=None`.

    Args:
        system_prompt: the system turn sent with every prompt.
        template: the user turn (see `Task`), from `input` and `method` (what to change).
        evolution: "constraints", "deepen", "concretize", "reasoning" or "breadth"; None draws
            one per prompt.
    """

    system_prompt: str = (
        "You rewrite instructions for AI assistants. The rewritten instruction must still make "
        "sense to a person and be answerable; it adds 10 to 20 words at most."
    )
    template: Optional[PromptTemplate] = None
    evolution: Optional[EvolutionMethod] = None

    def __post_init__(self) -> None:
        if self.evolution is not None and self.evolution not in _METHODS:
            raise ValueError(
                f"`evolution` must be one of {sorted(_METHODS)} or None, not {self.evolution!r}."
            )

    def generate_prompt(self, input: str, **_: Any) -> Prompt:
        method = _METHODS[self.evolution or random.choice(sorted(_METHODS))]
        default = (
            f"Rewrite the instruction below. {method}\n\n"
            f"Instruction: {input}\n\n"
            "Reply with the rewritten instruction only."
        )
        return self._prompt(default, input=input, method=method)

    def parse_output(self, output: str) -> Dict[str, Any]:
        text = _LABEL.sub("", output.strip(), count=1).strip()
        refused = text.lower().startswith(("sorry", "i cannot", "i can't", "as an ai"))
        if not text or refused:
            raise OutputParsingError(
                f"{type(self).__name__}: the model gave no usable instruction: {output!r}"
            )
        return {"instructions": [text]}

    @property
    def input_args_names(self) -> List[str]:
        return ["input"]

    @property
    def output_args_names(self) -> List[str]:
        return ["instructions"]
