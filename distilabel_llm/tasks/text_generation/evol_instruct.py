"""Evol-Instruct: rewrite an instruction into a harder or a new one (WizardLM's method)."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Any, ClassVar, Dict, List, Literal, Optional

from distilabel_llm.errors import OutputParsingError
from distilabel_llm.tasks.base import PromptTemplate
from distilabel_llm.tasks.prompt import Prompt
from distilabel_llm.tasks.text_generation.base import TextGenerationTask

__all__ = ["EvolInstructTask", "EvolutionMethod", "evolved_text"]

EvolutionMethod = Literal["breadth", "constraints", "deepen", "concretizing", "reasoning"]

# How each method changes the instruction: our wording of Evol-Instruct's five evolutions
# (four in depth, then "breadth", a new instruction), named as legacy distilabel named them.
_METHODS: Dict[str, str] = {
    "breadth": (
        "Write a brand-new instruction in the same domain, rarer in subject, of similar length "
        "and difficulty."
    ),
    "constraints": "Add one more constraint or requirement the answer must satisfy.",
    "deepen": "Ask about the same subject in more depth, so that a good answer goes further.",
    "concretizing": "Replace general ideas with specific, concrete ones.",
    "reasoning": (
        "Make it need several explicit steps of reasoning, where it needed only one or two."
    ),
}
_REFUSALS = ("sorry", "i cannot", "i can't", "as an ai")


def evolved_text(output: str, label: str, owner: str) -> str:
    """The rewritten text in a model's `output`, without a leading label such as
    "Rewritten instruction:" (`label` names what was rewritten).

    Raises:
        OutputParsingError: for an empty output or a refusal: Evol-Instruct's elimination step
            drops such rewrites, so the row keeps `None` for it.
    """
    leading = re.compile(
        rf"^\s*#*\s*(?:rewritten|new|evolved|improved)\s+(?:{label}|prompt)\s*#*\s*:?",
        re.IGNORECASE,
    )
    text = leading.sub("", output.strip(), count=1).strip()
    if not text or text.lower().startswith(_REFUSALS):
        raise OutputParsingError(f"{owner}: the model gave no usable {label}: {output!r}")
    return text


@dataclass
class EvolInstructTask(TextGenerationTask):
    """Evolves the row's `input` instruction with one Evol-Instruct method; outputs
    `instructions`, the evolved instruction (one per generation, as legacy distilabel did).

    The method is, first found: the `evolution_method` given to `generate_prompt` (or a row's
    column of that name, legacy's way), then `evolution`, else one drawn at random per prompt.
    An output that is empty or a refusal is refused as unparseable (Evol-Instruct's
    elimination step), so that generation keeps `None`.

    Args:
        system_prompt: the system turn sent with every prompt.
        template: the user turn (see `Task`), from `input`, `evolution_method` (the method's
            name) and `method` (what to change, in words).
        principles: groups of principles, by name (see `TextGenerationTask`).
        principles_distribution: how often each group is drawn; None draws none.
        evolution: one of `evolution_methods` ("breadth", "constraints", "deepen",
            "concretizing" or "reasoning"); None draws one per prompt.
    """

    evolution_methods: ClassVar[Dict[str, str]] = _METHODS
    """The methods this task draws from: name -> what the method changes, in words."""

    system_prompt: str = (
        "You rewrite instructions for AI assistants. The rewritten instruction must still make "
        "sense to a person and be answerable; it adds 10 to 20 words at most."
    )
    template: Optional[PromptTemplate] = None
    evolution: Optional[str] = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.evolution is not None:
            self._method(self.evolution)

    def generate_prompt(
        self, input: str, evolution_method: Optional[str] = None, **_: Any
    ) -> Prompt:
        name = self._method(evolution_method or self.evolution)
        method = self.evolution_methods[name]
        default = (
            f"Rewrite the instruction below. {method}\n\n"
            f"Instruction: {input}\n\n"
            "Reply with the rewritten instruction only."
        )
        return self._steered(
            self._prompt(default, input=input, evolution_method=name, method=method)
        )

    def parse_output(self, output: str) -> Dict[str, Any]:
        return {"instructions": evolved_text(output, "instruction", type(self).__name__)}

    @property
    def output_args_names(self) -> List[str]:
        return ["instructions"]

    def _method(self, name: Optional[str]) -> str:
        """`name`, checked, or one drawn at random when None.

        Raises:
            ValueError: if `name` is not one of this task's `evolution_methods`.
        """
        if name is None:
            return random.choice(sorted(self.evolution_methods))
        if name not in self.evolution_methods:
            raise ValueError(
                f"{type(self).__name__} has no evolution method {name!r}; it has "
                f"{sorted(self.evolution_methods)} (or None, for one drawn at random)."
            )
        return name
