"""Self-instruct: ask a model to write new user instructions for an application."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

from distilabel_llm.errors import OutputParsingError
from distilabel_llm.tasks.base import PromptTemplate
from distilabel_llm.tasks.prompt import Prompt
from distilabel_llm.tasks.text_generation.base import TextGenerationTask

__all__ = ["SelfInstructTask"]

_DEFAULT_SYSTEM_PROMPT = (
    "You write realistic requests that users send to software assistants. Each request is "
    "self-contained, specific and varied in topic, length and difficulty."
)

# Numbering and bullets a model puts in front of list items: "1.", "2)", "-", "*", "•".
_LIST_MARKER = re.compile(r"^\s*(?:\d+\s*[.):]|[-*\u2022])\s*")


@dataclass
class SelfInstructTask(TextGenerationTask):
    """Writes `num_instructions` new instructions about the row's `input` topic.

    Args:
        system_prompt: the system turn sent with every prompt.
        template: the user turn (see `Task`), from the fields `input`,
            `application_description`, `num_instructions` and
            `criteria_for_query_generation`.
        principles: groups of principles, by name (see `TextGenerationTask`).
        principles_distribution: how often each group is drawn; None draws none.
        application_description: the application the instructions are for.
        num_instructions: how many instructions to ask for.
        criteria_for_query_generation: what every instruction must satisfy, e.g. "Each
            instruction asks for a single, checkable fact."; None adds nothing.
    """

    system_prompt: str = _DEFAULT_SYSTEM_PROMPT
    template: Optional[PromptTemplate] = None
    application_description: str = "A general-purpose AI assistant."
    num_instructions: int = 5
    criteria_for_query_generation: Optional[str] = None

    def generate_prompt(self, input: str, **_: Any) -> Prompt:
        criteria = (
            f"Every instruction must meet these criteria: {self.criteria_for_query_generation}\n"
            if self.criteria_for_query_generation
            else ""
        )
        default = (
            f"Write {self.num_instructions} different instructions that a user could give to "
            f"the following application.\n"
            f"Application: {self.application_description}\n"
            f"Topic: {input}\n"
            f"{criteria}"
            "Write one instruction per line, with no numbering and nothing else."
        )
        return self._steered(
            self._prompt(
                default,
                input=input,
                application_description=self.application_description,
                num_instructions=self.num_instructions,
                criteria_for_query_generation=self.criteria_for_query_generation or "",
            )
        )

    def parse_output(self, output: str) -> Dict[str, Any]:
        instructions = [_LIST_MARKER.sub("", line).strip() for line in output.splitlines()]
        instructions = [line for line in instructions if line]
        if not instructions:
            raise OutputParsingError(
                f"{type(self).__name__} found no instruction in the model's output: {output!r}"
            )
        return {"instructions": instructions}

    @property
    def output_args_names(self) -> List[str]:
        return ["instructions"]
