"""Plain text generation: one answer per prompt, optionally steered by a principle."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Dict, List, Literal, Optional, Union

from distilabel_llm.tasks.base import PromptTemplate, Task
from distilabel_llm.tasks.prompt import Prompt
from distilabel_llm.tasks.text_generation.principles import PRINCIPLES

__all__ = ["TextGenerationTask"]

_DEFAULT_SYSTEM_PROMPT = (
    "You are a knowledgeable and careful assistant. Answer the user's request accurately and "
    "concisely. If you do not know something, say so instead of guessing, and never give "
    "advice that could cause harm."
)

PrinciplesDistribution = Union[Dict[str, float], Literal["balanced"], None]


@dataclass
class TextGenerationTask(Task):
    """Answers the row's `input`; outputs it as `generations`.

    With `principles_distribution`, each prompt's system turn ends with one principle drawn at
    random: first a group of `principles` (in proportion to the distribution's weights, or
    evenly for `"balanced"`), then a principle of that group. Different generations then lean
    towards different qualities, as legacy distilabel's principles did (and UltraFeedback's).

    Args:
        system_prompt: the system turn sent with every prompt.
        template: the user turn, from the field `input` (see `Task`); the input itself if None.
        principles: groups of principles, by name.
        principles_distribution: how often each group is drawn; None draws none.
    """

    system_prompt: str = _DEFAULT_SYSTEM_PROMPT
    template: Optional[PromptTemplate] = None
    principles: Dict[str, List[str]] = field(default_factory=lambda: dict(PRINCIPLES))
    principles_distribution: PrinciplesDistribution = None

    def __post_init__(self) -> None:
        if isinstance(self.principles_distribution, dict):
            unknown = sorted(set(self.principles_distribution) - set(self.principles))
            if unknown:
                raise ValueError(
                    f"`principles_distribution` names {unknown}, which `principles` lacks; it "
                    f"has {sorted(self.principles)}."
                )
            if not sum(self.principles_distribution.values()) > 0:
                raise ValueError("`principles_distribution` needs a weight above 0.")
        elif self.principles_distribution not in (None, "balanced"):
            raise ValueError(
                "`principles_distribution` must be a dict of weights, 'balanced' or None, not "
                f"{self.principles_distribution!r}."
            )

    def generate_prompt(self, input: str, **_: Any) -> Prompt:
        return self._steered(self._prompt(input, input=input))

    def parse_output(self, output: str) -> Dict[str, Any]:
        return {"generations": output}

    @property
    def input_args_names(self) -> List[str]:
        return ["input"]

    @property
    def output_args_names(self) -> List[str]:
        return ["generations"]

    def _steered(self, prompt: Prompt) -> Prompt:
        """`prompt` with a principle drawn for it at the end of its system turn, if any."""
        principle = self._draw_principle()
        if principle:
            prompt.system_prompt = f"{prompt.system_prompt}\n\n{principle}".strip()
        return prompt

    def _draw_principle(self) -> Optional[str]:
        if self.principles_distribution is None:
            return None
        if self.principles_distribution == "balanced":
            groups, weights = list(self.principles), None
        else:
            groups = list(self.principles_distribution)
            weights = [self.principles_distribution[group] for group in groups]
        group = random.choices(groups, weights=weights)[0]
        return random.choice(self.principles[group]) if self.principles[group] else None
