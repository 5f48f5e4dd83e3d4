"""Plain text generation: one answer per prompt."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List

from distilabel_llm.tasks.base import Task
from distilabel_llm.tasks.prompt import Prompt

__all__ = ["TextGenerationTask"]

_DEFAULT_SYSTEM_PROMPT = (
    "You are a knowledgeable and careful assistant. Answer the user's request accurately and "
    "concisely. If you do not know something, say so instead of guessing, and never give "
    "advice that could cause harm."
)


@dataclass
class TextGenerationTask(Task):
    """Answers the row's `input`; outputs it as `generations`.

    Args:
        system_prompt: the system turn sent with every prompt.
    """

    system_prompt: str = _DEFAULT_SYSTEM_PROMPT

    def generate_prompt(self, input: str, **_: Any) -> Prompt:
        return Prompt(system_prompt=self.system_prompt, formatted_prompt=input)

    def parse_output(self, output: str) -> Dict[str, Any]:
        return {"generations": output}

    @property
    def input_args_names(self) -> List[str]:
        return ["input"]

    @property
    def output_args_names(self) -> List[str]:
        return ["generations"]
