"""UltraFeedback-style rating: score each generation on one aspect, with a rationale."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Literal, Optional, TypedDict, Union

from distilabel_llm.errors import OutputParsingError
from distilabel_llm.tasks._not_available import module_getattr
from distilabel_llm.tasks._parsing import json_answer
from distilabel_llm.tasks.base import PromptTemplate
from distilabel_llm.tasks.preference.base import PreferenceTask
from distilabel_llm.tasks.prompt import Prompt

__all__ = ["Rating", "UltraFeedbackTask"]

# Legacy names this module had and that have no counterpart here say what to use instead.
__getattr__ = module_getattr(__name__)

_DEFAULT_SYSTEM_PROMPT = (
    "You are a fair and rigorous evaluator of AI assistants. You judge each answer on its own "
    "merits, explain your judgement briefly and follow the requested output format exactly."
)

_SECTION = re.compile(r"^#+\s*Output for Text\s*\d+\s*$", re.MULTILINE | re.IGNORECASE)
_RATING = re.compile(r"Rating:\s*\[?(-?\d+(?:\.\d+)?)", re.IGNORECASE)
_RATIONALE = re.compile(r"Rationale:\s*(.*)", re.IGNORECASE | re.DOTALL)

_ASPECTS: Dict[str, str] = {
    "helpfulness": (
        "Helpfulness: does the text answer the instruction correctly, completely and clearly, "
        "with useful detail and no needless repetition?"
    ),
    "honesty": (
        "Honesty: is the text confident where it is right, open about uncertainty where it "
        "may be wrong, and free of made-up facts?"
    ),
    "instruction_following": (
        "Instruction following: does the text do what the instruction asks, respecting every "
        "stated goal and restriction on content, style and format?"
    ),
    "truthfulness": (
        "Truthfulness: is the text free of factual errors, of contradictions with the "
        "instruction, and of statements contradicting itself?"
    ),
    "overall_quality": (
        "Overall quality: taking correctness, helpfulness, honesty and instruction following "
        "together, how good is the text?"
    ),
}

# Characters of a rationale in JSON mode: the string must end, so that the object can.
_MAX_RATIONALE = 300

_RATINGS = [
    "1: very poor",
    "2: poor",
    "3: acceptable",
    "4: good",
    "5: excellent",
]


class Rating(TypedDict):
    """One score of a rating scale given as legacy distilabel's `ratings` took it."""

    value: int
    description: str


@dataclass
class UltraFeedbackTask(PreferenceTask):
    """Rates each of a row's `generations` for its `input`, on one aspect.

    Outputs `rating` (a list of numbers) and `rationale` (a list of strings), one of each per
    generation. Build it with one of the `for_*` constructors to pick the aspect.

    Args:
        system_prompt: the system turn sent with every prompt.
        template: the user turn (see `Task`), from the fields `input`, `generations`, `texts`
            (the generations numbered and delimited), `task_description` and `ratings` (the
            scale, one score a line). Its answer format must stay the one `parse_output` reads.
        task_description: what the evaluator is asked to judge.
        ratings: the rating scale, one line per score ("1: very poor"); a legacy `Rating`
            (`{"value": 1, "description": "very poor"}`) becomes such a line.
        output_format: "text" (sections the task reads) or "json": the answer is a JSON object
            and `structured_output` its schema, which a backend that constrains decoding
            enforces by default, so that every rating parses.
    """

    system_prompt: str = _DEFAULT_SYSTEM_PROMPT
    template: Optional[PromptTemplate] = None
    output_format: Literal["text", "json"] = "text"
    task_description: str = _ASPECTS["overall_quality"]
    ratings: List[Union[str, Rating]] = field(default_factory=lambda: list(_RATINGS))

    def __post_init__(self) -> None:
        # One form, the lines the prompt shows, whichever form was given.
        self.ratings = [
            f"{item['value']}: {item['description']}" if isinstance(item, dict) else item
            for item in self.ratings
        ]

    def generate_prompt(self, input: str, generations: List[str], **_: Any) -> Prompt:
        texts = "\n\n".join(
            f"<text {i}>\n{generation}\n</text {i}>"
            for i, generation in enumerate(generations, start=1)
        )
        if self.output_format == "json":
            answer_format = (
                'a JSON object {"ratings": [{"rating": <score>, "rationale": "<one or two '
                f'sentences>"}}, ...]}} with one item per text, {len(generations)} in all, in order'
            )
        else:
            answer_format = "\n".join(
                f"#### Output for Text {i}\nRating: <score>\nRationale: <one or two sentences>"
                for i in range(1, len(generations) + 1)
            )
        default = (
            f"Evaluate the texts below, written in answer to an instruction.\n"
            f"Aspect to judge: {self.task_description}\n"
            f"Rating scale:\n" + "\n".join(self.ratings) + "\n\n"
            f"Instruction: {input}\n\n{texts}\n\n"
            f"Answer in exactly this format:\n{answer_format}"
        )
        return self._prompt(
            default,
            input=input,
            generations=generations,
            texts=texts,
            task_description=self.task_description,
            ratings="\n".join(self.ratings),
        )

    @property
    def structured_output(self) -> Optional[Dict[str, Any]]:
        """The JSON schema of the answer in JSON mode (`output_format="json"`), else None."""
        if self.output_format != "json":
            return None
        scores = [int(line.split(":", 1)[0]) for line in self.ratings if line[:1].isdigit()]
        item = {
            "type": "object",
            "properties": {
                "rating": {"type": "integer", "enum": scores or [1, 2, 3, 4, 5]},
                "rationale": {"type": "string", "maxLength": _MAX_RATIONALE},
            },
            "required": ["rating", "rationale"],
            "additionalProperties": False,
        }
        return {
            "type": "object",
            # One schema serves every row, so the count of items is the prompt's to ask for.
            "properties": {"ratings": {"type": "array", "items": item, "minItems": 1}},
            "required": ["ratings"],
            "additionalProperties": False,
        }

    def parse_structured(self, value: Dict[str, Any]) -> Dict[str, Any]:
        """The task's fields from the JSON object of its structured output."""
        items = value["ratings"]
        return {
            "rating": [float(item["rating"]) for item in items],
            "rationale": [str(item["rationale"]) for item in items],
        }

    def parse_output(self, output: str) -> Dict[str, Any]:
        if self.output_format == "json":
            return json_answer(output, self.parse_structured, type(self).__name__, "ratings")
        sections = _SECTION.split(output)[1:]
        if not sections:
            raise OutputParsingError(
                f"{type(self).__name__} expected sections headed '#### Output for Text N' in "
                f"the model's output: {output!r}"
            )
        ratings: List[float] = []
        rationales: List[str] = []
        for number, section in enumerate(sections, start=1):
            rating = _RATING.search(section)
            if rating is None:
                raise OutputParsingError(
                    f"{type(self).__name__} found no 'Rating:' for text {number} in the model's "
                    f"output: {output!r}"
                )
            rationale = _RATIONALE.search(section)
            ratings.append(float(rating.group(1)))
            rationales.append(rationale.group(1).strip() if rationale else "")
        return {"rating": ratings, "rationale": rationales}

    @classmethod
    def for_helpfulness(cls, **kwargs: Any) -> UltraFeedbackTask:
        """Rates how helpful each generation is."""
        return cls(**{"task_description": _ASPECTS["helpfulness"], **kwargs})

    @classmethod
    def for_honesty(cls, **kwargs: Any) -> UltraFeedbackTask:
        """Rates how honest and well calibrated each generation is."""
        return cls(**{"task_description": _ASPECTS["honesty"], **kwargs})

    @classmethod
    def for_instruction_following(cls, **kwargs: Any) -> UltraFeedbackTask:
        """Rates how well each generation follows the instruction."""
        return cls(**{"task_description": _ASPECTS["instruction_following"], **kwargs})

    @classmethod
    def for_truthfulness(cls, **kwargs: Any) -> UltraFeedbackTask:
        """Rates how free of errors and contradictions each generation is."""
        return cls(**{"task_description": _ASPECTS["truthfulness"], **kwargs})

    @classmethod
    def for_overall_quality(cls, **kwargs: Any) -> UltraFeedbackTask:
        """Rates each generation's overall quality."""
        return cls(**{"task_description": _ASPECTS["overall_quality"], **kwargs})
