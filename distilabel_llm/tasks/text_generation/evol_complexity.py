"""Deita's Evol-Complexity: Evol-Instruct's in-depth evolutions alone, to grow an
instruction's complexity."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Dict, Literal

from distilabel_llm.tasks.text_generation.evol_instruct import EvolInstructTask

__all__ = ["EvolComplexityTask", "EvolutionMethod"]

EvolutionMethod = Literal["constraints", "deepen", "concretizing", "reasoning"]

# Deita makes instructions harder, never new ones: "breadth" is left out.
_IN_DEPTH = ("constraints", "deepen", "concretizing", "reasoning")


@dataclass
class EvolComplexityTask(EvolInstructTask):
    """Evolves the row's `input` instruction into a more complex one, as Deita's
    Evol-Complexity does; outputs `instructions`, one per generation.

    An `EvolInstructTask` restricted to the four in-depth methods: "constraints", "deepen",
    "concretizing" and "reasoning" ("breadth" is refused). Rows whose rewrite is empty or a
    refusal keep `None` (the elimination step). Scoring the evolved instructions is
    `ComplexityScorerTask`'s work.

    Args:
        system_prompt: the system turn sent with every prompt.
        template: the user turn (see `Task`), from `input`, `evolution_method` and `method`.
        principles: groups of principles, by name (see `TextGenerationTask`).
        principles_distribution: how often each group is drawn; None draws none.
        evolution: one of the four methods; None draws one per prompt (as does an
            `evolution_method` given to `generate_prompt`, legacy's per-prompt choice).
    """

    evolution_methods: ClassVar[Dict[str, str]] = {
        name: EvolInstructTask.evolution_methods[name] for name in _IN_DEPTH
    }
