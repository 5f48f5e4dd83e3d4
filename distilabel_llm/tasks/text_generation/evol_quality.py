"""Deita's Evol-Quality: rewrite a response so that it serves its instruction better."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Dict, List, Literal, Optional

from distilabel_llm.tasks.base import PromptTemplate
from distilabel_llm.tasks.prompt import Prompt
from distilabel_llm.tasks.text_generation.evol_instruct import EvolInstructTask, evolved_text

__all__ = ["EvolQualityTask", "EvolutionMethod"]

EvolutionMethod = Literal["helpfulness", "relevance", "depth", "creativity", "details"]

# How each method improves the response: our wording of Deita's five quality evolutions.
_METHODS: Dict[str, str] = {
    "helpfulness": "Make it more useful to the person who asked.",
    "relevance": "Keep it closer to what the instruction asks, cutting what strays from it.",
    "depth": "Go deeper into the subject: explain why, not only what.",
    "creativity": "Make it more original and inventive, without making it less correct.",
    "details": "Add specific details, figures or examples where they help.",
}


@dataclass
class EvolQualityTask(EvolInstructTask):
    """Evolves the row's `generation` (a response to its `input`) into a better response, as
    Deita's Evol-Quality does; outputs `generations`, one per generation.

    The method is one of "helpfulness", "relevance", "depth", "creativity" and "details",
    chosen as `EvolInstructTask` chooses (`evolution_method`, then `evolution`, else drawn at
    random). A rewrite that is empty or a refusal keeps `None` (the elimination step).
    Scoring the evolved responses is `QualityScorerTask`'s work.

    Args:
        system_prompt: the system turn sent with every prompt.
        template: the user turn (see `Task`), from `input`, `generation`, `evolution_method`
            and `method` (what to improve, in words).
        principles: groups of principles, by name (see `TextGenerationTask`).
        principles_distribution: how often each group is drawn; None draws none.
        evolution: one of the five methods; None draws one per prompt.
    """

    evolution_methods: ClassVar[Dict[str, str]] = _METHODS

    system_prompt: str = (
        "You improve responses written by AI assistants. The rewritten response keeps "
        "everything useful in the original, code and tables included, stays easy to read, "
        "and adds 10 to 20 words at most."
    )
    template: Optional[PromptTemplate] = None

    def generate_prompt(
        self, input: str, generation: str, evolution_method: Optional[str] = None, **_: Any
    ) -> Prompt:
        name = self._method(evolution_method or self.evolution)
        method = self.evolution_methods[name]
        default = (
            f"Rewrite the response to the instruction below. {method}\n\n"
            f"Instruction: {input}\n\n"
            f"Response: {generation}\n\n"
            "Reply with the rewritten response only."
        )
        return self._steered(
            self._prompt(
                default,
                input=input,
                generation=generation,
                evolution_method=name,
                method=method,
            )
        )

    def parse_output(self, output: str) -> Dict[str, Any]:
        return {"generations": evolved_text(output, "response", type(self).__name__)}

    @property
    def input_args_names(self) -> List[str]:
        return ["input", "generation"]

    @property
    def output_args_names(self) -> List[str]:
        return ["generations"]
