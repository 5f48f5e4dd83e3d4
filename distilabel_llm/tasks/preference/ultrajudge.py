"""UltraJudge-style rating: each generation scored on four areas, with reasons."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from distilabel_llm.errors import OutputParsingError
from distilabel_llm.tasks._not_available import module_getattr
from distilabel_llm.tasks._parsing import numbered, numbered_answers, sections
from distilabel_llm.tasks.base import PromptTemplate
from distilabel_llm.tasks.preference.base import PreferenceTask
from distilabel_llm.tasks.prompt import Prompt

__all__ = ["UltraJudgeTask"]

# Legacy names this module had and that have no counterpart here say what to use instead.
__getattr__ = module_getattr(__name__)

_DEFAULT_SYSTEM_PROMPT = (
    "You compare answers by AI assistants area by area. You score every area from 1 to 10 and "
    "justify each score in one sentence."
)


@dataclass
class UltraJudgeTask(PreferenceTask):
    """Scores each of a row's `generations` for its `input` on several areas, 1 to 10.

    Outputs `rating` (each generation's mean over the areas) and `areas` (per generation, a
    dict from area to `{"rating": score, "rationale": reason}`).

    Args:
        system_prompt: the system turn sent with every prompt.
        template: the user turn (see `Task`), from the fields `input`, `generations`,
            `answers` (each headed `### Answer N`) and `areas` (one a line).
        areas: what to score each answer on.
    """

    system_prompt: str = _DEFAULT_SYSTEM_PROMPT
    template: Optional[PromptTemplate] = None
    areas: List[str] = field(
        default_factory=lambda: [
            "Practical accuracy",
            "Clarity",
            "Completeness",
            "Relevance",
        ]
    )

    def generate_prompt(self, input: str, generations: List[str], **_: Any) -> Prompt:
        answers = numbered_answers(generations, "Answer")
        areas = "\n".join(f"- {area}" for area in self.areas)
        layout = "\n".join(f"{area}: <1-10> - <one sentence>" for area in self.areas)
        default = (
            f"Score each answer to the request below on these areas, from 1 to 10:\n{areas}\n\n"
            f"### Request\n{input}\n\n{answers}\n\n"
            f"For each answer, write exactly:\n#### Scores for Answer <N>\n{layout}"
        )
        return self._prompt(
            default, input=input, generations=generations, answers=answers, areas=areas
        )

    def parse_output(self, output: str) -> Dict[str, Any]:
        ratings: List[float] = []
        all_areas: List[Dict[str, Dict[str, Any]]] = []
        for number, section in enumerate(sections(output, "Scores for Answer", "UltraJudgeTask")):
            scored: Dict[str, Dict[str, Any]] = {}
            for area in self.areas:
                line = re.search(
                    rf"^\W*{re.escape(area)}\W*:\s*(.*)$", section, re.MULTILINE | re.IGNORECASE
                )
                score = numbered(line.group(1)) if line else None
                if score is None:
                    raise OutputParsingError(
                        f"{type(self).__name__} found no score for {area!r} of answer "
                        f"{number + 1} in the model's output: {output!r}"
                    )
                reason = re.sub(r"^\s*-?\d+(?:\.\d+)?\s*(?:/\s*10)?\s*[-:]*\s*", "", line.group(1))
                scored[area] = {"rating": score, "rationale": reason.strip()}
            all_areas.append(scored)
            ratings.append(sum(item["rating"] for item in scored.values()) / len(scored))
        return {"rating": ratings, "areas": all_areas}

    @property
    def input_args_names(self) -> List[str]:
        return ["input", "generations"]

    @property
    def output_args_names(self) -> List[str]:
        return ["rating", "areas"]
