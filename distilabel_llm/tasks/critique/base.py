"""Critique: a written review of each generation, ending in an overall score."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

from distilabel_llm.errors import OutputParsingError
from distilabel_llm.tasks._not_available import module_getattr
from distilabel_llm.tasks._parsing import numbered, numbered_answers, sections
from distilabel_llm.tasks.base import PromptTemplate, Task
from distilabel_llm.tasks.prompt import Prompt

__all__ = ["CritiqueTask"]

# Legacy names this module had and that have no counterpart here say what to use instead.
__getattr__ = module_getattr(__name__)

_DEFAULT_SYSTEM_PROMPT = (
    "You review answers written by AI assistants. You are specific: you quote what is wrong "
    "or missing and say how to fix it, and you score each answer on its merits alone."
)
_SCORE = re.compile(r"^\s*Overall score\s*:\s*(.*)$", re.MULTILINE | re.IGNORECASE)


@dataclass
class CritiqueTask(Task):
    """Critiques each of a row's `generations` for its `input` and scores it from 1 to 10.

    Outputs `critique` (a list of strings) and `score` (a list of numbers), one of each per
    generation; as a labeller it rates the generator's outputs.

    Args:
        system_prompt: the system turn sent with every prompt.
        template: the user turn (see `Task`), from the fields `input`, `generations` and
            `answers` (the generations, each headed `### Answer N`). Its answer format must
            stay the one `parse_output` reads.
    """

    system_prompt: str = _DEFAULT_SYSTEM_PROMPT
    template: Optional[PromptTemplate] = None

    def generate_prompt(self, input: str, generations: List[str], **_: Any) -> Prompt:
        answers = numbered_answers(generations, "Answer")
        default = (
            "Review each answer to the request below: say what it gets right, what it gets "
            "wrong or leaves out, and how it could be better. Then score it from 1 (useless) "
            "to 10 (could not be better).\n\n"
            f"### Request\n{input}\n\n{answers}\n\n"
            "For each answer, write exactly:\n"
            "#### Critique of Answer <N>\n<your review>\nOverall score: <1-10>"
        )
        return self._prompt(default, input=input, generations=generations, answers=answers)

    def parse_output(self, output: str) -> Dict[str, Any]:
        critiques: List[str] = []
        scores: List[float] = []
        for number, section in enumerate(sections(output, "Critique of Answer", self._name)):
            match = _SCORE.search(section)
            score = numbered(match.group(1)) if match else None
            if score is None:
                raise OutputParsingError(
                    f"{self._name} found no 'Overall score:' for answer {number + 1} in the "
                    f"model's output: {output!r}"
                )
            critiques.append(section[: match.start()].strip())
            scores.append(score)
        return {"critique": critiques, "score": scores}

    @property
    def input_args_names(self) -> List[str]:
        return ["input", "generations"]

    @property
    def output_args_names(self) -> List[str]:
        return ["critique", "score"]

    @property
    def _name(self) -> str:
        return type(self).__name__
