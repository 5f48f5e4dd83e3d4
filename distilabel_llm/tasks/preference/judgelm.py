"""JudgeLM-style rating: one score per generation on a line, then an explanation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Literal, Optional

from distilabel_llm.errors import OutputParsingError
from distilabel_llm.tasks._not_available import module_getattr
from distilabel_llm.tasks._parsing import json_answer
from distilabel_llm.tasks.base import PromptTemplate
from distilabel_llm.tasks.preference.base import PreferenceTask
from distilabel_llm.tasks.prompt import Prompt

__all__ = ["JudgeLMTask"]

# Legacy names this module had and that have no counterpart here say what to use instead.
__getattr__ = module_getattr(__name__)

_DEFAULT_SYSTEM_PROMPT = (
    "You are an impartial judge of AI assistants' answers. You compare answers on "
    "helpfulness, relevance, accuracy and level of detail, ignoring their order and length."
)


@dataclass
class JudgeLMTask(PreferenceTask):
    """Scores each of a row's `generations` for its `input` from 1 to 10.

    The judge answers with the scores on its first line, separated by spaces, then an
    explanation; outputs `rating` (a list of numbers) and `rationale` (a string).

    Args:
        system_prompt: the system turn sent with every prompt.
        template: the user turn (see `Task`), from the fields `input`, `generations` and
            `answers` (the generations numbered and delimited).
        output_format: "text" (scores on the first line) or "json": the answer is a JSON
            object and `structured_output` its schema, which a backend that constrains
            decoding enforces by default.
    """

    system_prompt: str = _DEFAULT_SYSTEM_PROMPT
    template: Optional[PromptTemplate] = None
    output_format: Literal["text", "json"] = "text"

    def generate_prompt(self, input: str, generations: List[str], **_: Any) -> Prompt:
        answers = "\n\n".join(
            f"[Answer {i}]\n{generation}\n[End of Answer {i}]"
            for i, generation in enumerate(generations, start=1)
        )
        if self.output_format == "json":
            answer = (
                'Answer with a JSON object {"scores": [<score>, ...], "rationale": "<your '
                f'explanation>"}} with {len(generations)} scores, in the order of the answers.'
            )
        else:
            answer = (
                "On the first line write only the scores, in the order of the answers, "
                "separated by spaces. From the second line on, explain your scores."
            )
        default = (
            f"[Question]\n{input}\n\n{answers}\n\n"
            f"Rate each of the {len(generations)} answers with a score from 1 to 10. {answer}"
        )
        return self._prompt(default, input=input, generations=generations, answers=answers)

    @property
    def structured_output(self) -> Optional[Dict[str, Any]]:
        """The JSON schema of the answer in JSON mode (`output_format="json"`), else None."""
        if self.output_format != "json":
            return None
        return {
            "type": "object",
            "properties": {
                "scores": {
                    "type": "array",
                    "items": {"type": "integer", "enum": list(range(1, 11))},
                    "minItems": 1,  # the count of scores is the prompt's to ask for
                },
                "rationale": {"type": "string", "maxLength": 800},  # it must end
            },
            "required": ["scores", "rationale"],
            "additionalProperties": False,
        }

    def parse_structured(self, value: Dict[str, Any]) -> Dict[str, Any]:
        """The task's fields from the JSON object of its structured output."""
        return {
            "rating": [float(score) for score in value["scores"]],
            "rationale": str(value["rationale"]),
        }

    def parse_output(self, output: str) -> Dict[str, Any]:
        if self.output_format == "json":
            return json_answer(output, self.parse_structured, type(self).__name__, "scores")
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
