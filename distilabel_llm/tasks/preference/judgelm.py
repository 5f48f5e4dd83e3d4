"""JudgeLM-style rating: one score per generation on a line, then an explanation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional

from distilabel_llm.errors import OutputParsingError
from distilabel_llm.tasks.base import PromptTemplate, Task
from distilabel_llm.tasks.prompt import Prompt

__all__ = ["JudgeLMTask"]

_DEFAULT_SYSTEM_PROMPT = (
    "You are an impartial judge of AI assistants' answers. You compare answers on "
    "helpfulness, relevance, accuracy and level of detail, ignoring their order and length."
)


@dataclass
class JudgeLMTask(Task):
    """Scores each of a row's `generations` for its `input` from 1 to 10.

    The judge answers with the scores on its first line, separated by spaces, then an
    explanation; outputs `rating` (a list of numbers) and `rationale` (a string).

    Args:
        system_prompt: the system turn sent with every prompt.
        template: the user turn (see `Task`), from the fields `input`, `generations` and
            `answers` (the generations numbered and delimited).
    """

    system_prompt: str = _DEFAULT_SYSTEM_PROMPT
    template: Optional[PromptTemplate] = None

    def generate_prompt(self, input: str, generations: List[str], **_: Any) -> Prompt:
        answers = "\n\n".join(
            f"[Answer {i}]\n{generation}\n[End of Answer {i}]"
            for i, generation in enumerate(generations, start=1)
        )
        default = (
            f"[Question]\n{input}\n\n{answers}\n\n"
            f"Rate each of the {len(generations)} answers with a score from 1 to 10. On the "
            "first line write only the scores, in the order of the answers, separated by "
            "spaces. From the second line on, explain your scores."
        )
        return self._prompt(default, input=input, generations=generations, answers=answers)

    def parse_output(self, output: str) -> Dict[str, Any]:
        first_line, _, rationale = output.strip().partition("\n")
        try:
            ratings = [float(score) for score in first_line.replace(",", " ").split()]
        except ValueError:
            ratings = []
        if not ratings:
            raise OutputParsingError(
                f"{type(self).__name__} expected space-separated scores on the first line of "
                f"the model's output: {output!r}"
            )
        return {"rating": ratings, "rationale": rationale.strip()}

    @property
    def input_args_names(self) -> List[str]:
        return ["input", "generations"]

    @property
    def output_args_names(self) -> List[str]:
        return ["rating", "rationale"]
