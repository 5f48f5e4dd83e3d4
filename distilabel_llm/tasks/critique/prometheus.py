"""Prometheus-style grading: a critique against a rubric and a reference answer, then a
score."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Union

from distilabel_llm.errors import OutputParsingError
from distilabel_llm.tasks._parsing import numbered, numbered_answers
from distilabel_llm.tasks.base import PromptTemplate
from distilabel_llm.tasks.critique.base import CritiqueTask
from distilabel_llm.tasks.prompt import Prompt

__all__ = ["PrometheusTask"]

_DEFAULT_SYSTEM_PROMPT = (
    "You grade answers strictly against the rubric you are given. Your critique cites the "
    "rubric, compares each answer with the reference answer and never grades on length."
)
_RESULT = re.compile(r"\[RESULT\]", re.IGNORECASE)
_LEADING_SCORE = re.compile(r"^\s*-?\d+(?:\.\d+)?")
_ANSWER_LABEL = re.compile(r"^\s*Answer\s*\d+\s*:\s*", re.IGNORECASE)


@dataclass
class PrometheusTask(CritiqueTask):
    """Grades each of a row's `generations` (or its single `generation`) against a rubric and
    the row's `ref_completion`, with a critique and a score from the rubric.

    The grader writes, for each answer, its critique and then `[RESULT] <score>`. Outputs
    `critique` and `score`, lists with one item per answer. Legacy's
    `PrometheusTask(scoring_criteria=..., score_descriptions=...)` builds one as it did.

    Args:
        system_prompt: the system turn sent with every prompt.
        template: the user turn (see `Task`), from the fields `input`, `generations`,
            `answers`, `ref_completion`, `scoring_criteria` and `rubric` (the scores, what
            they mean).
        scoring_criteria: the question the rubric answers, e.g. "Is the answer factually
            correct?".
        score_descriptions: what each score means, lowest to highest (1 to 5 by default; a
            scale such as 0 to 4 works too).
    """

    system_prompt: str = _DEFAULT_SYSTEM_PROMPT
    template: Optional[PromptTemplate] = None
    scoring_criteria: str = (
        "Does the answer respond to the request correctly, completely and clearly?"
    )
    score_descriptions: Dict[int, str] = field(
        default_factory=lambda: {
            1: "Wrong, off topic or unusable.",
            2: "Mostly wrong or missing most of what was asked.",
            3: "Partly right; important gaps or errors remain.",
            4: "Right and useful, with small gaps or slips.",
            5: "Right, complete and clear; as good as the reference or better.",
        }
    )

    def __post_init__(self) -> None:
        # Scores are ints; a task loaded from JSON has them as strings.
        self.score_descriptions = {int(k): v for k, v in self.score_descriptions.items()}
        if not self.score_descriptions:
            raise ValueError("`score_descriptions` needs at least one score.")

    def generate_prompt(
        self,
        input: str,
        ref_completion: str,
        generations: Optional[List[str]] = None,
        generation: Optional[str] = None,
        **_: Any,
    ) -> Prompt:
        answers_list = generations if generations is not None else [generation or ""]
        answers = numbered_answers(answers_list, "Answer")
        rubric = "\n".join(
            f"Score {score}: {meaning}"
            for score, meaning in sorted(self.score_descriptions.items())
        )
        lowest, highest = min(self.score_descriptions), max(self.score_descriptions)
        default = (
            f"### Request\n{input}\n\n{answers}\n\n"
            f"### Reference answer (a score of {highest})\n{ref_completion}\n\n"
            f"### Rubric\n{self.scoring_criteria}\n{rubric}\n\n"
            "For each answer in order, write your critique of it, then `[RESULT]` and its "
            f"score from {lowest} to {highest}, e.g.:\nAnswer 1: <critique> [RESULT] {highest}"
        )
        return self._prompt(
            default,
            input=input,
            generations=answers_list,
            answers=answers,
            ref_completion=ref_completion,
            scoring_criteria=self.scoring_criteria,
            rubric=rubric,
        )

    def parse_output(self, output: str) -> Dict[str, Any]:
        pieces = _RESULT.split(output)
        if len(pieces) < 2:
            raise OutputParsingError(
                f"{type(self).__name__} found no '[RESULT] <score>' in the model's output: "
                f"{output!r}"
            )
        critiques: List[str] = []
        scores: List[Union[float, None]] = []
        for before, after in zip(pieces, pieces[1:]):
            score = numbered(after.strip().split("\n", 1)[0])
            if score is None:
                raise OutputParsingError(
                    f"{type(self).__name__} found '[RESULT]' without a score in the model's "
                    f"output: {output!r}"
                )
            # After the first, each piece starts with the previous answer's score.
            text = _LEADING_SCORE.sub("", before, count=1) if critiques else before
            critiques.append(_ANSWER_LABEL.sub("", text.strip()))
            scores.append(score)
        return {"critique": critiques, "score": scores}

    @property
    def input_args_names(self) -> List[str]:
        return ["input", "generations", "ref_completion"]

    def missing_input_args(self, row: Dict[str, Any]) -> List[str]:
        """`generations` or a single `generation` will do."""
        needed = ["input", "ref_completion"]
        if row.get("generations") is None and row.get("generation") is None:
            needed.append("generations")
        return [name for name in needed if row.get(name) is None]
