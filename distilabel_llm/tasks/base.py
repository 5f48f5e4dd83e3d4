"""The `Task` contract: how a row becomes a prompt and a model's text becomes fields."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Dict, List, Union

from distilabel_llm.tasks.prompt import ChatMessages, Prompt

__all__ = ["Task"]


class Task(ABC):
    """Turns an input row into a prompt, and a model's raw text into output fields.

    Subclasses set `system_prompt` and implement the four members below. `generate_prompt`
    may return a `Prompt` (rendered by the LLM in its prompt format) or an already rendered
    string or list of chat messages (sent as is).
    """

    system_prompt: str = ""

    @abstractmethod
    def generate_prompt(self, **input: Any) -> Union[Prompt, str, ChatMessages]:
        """Builds the prompt for one input row."""

    @abstractmethod
    def parse_output(self, output: str) -> Dict[str, Any]:
        """Parses a model's raw text into the task's output fields.

        Raises:
            OutputParsingError: if `output` is not in the expected shape.
        """

    @property
    @abstractmethod
    def input_args_names(self) -> List[str]:
        """The keys `generate_prompt` needs in each row."""

    @property
    @abstractmethod
    def output_args_names(self) -> List[str]:
        """The keys `parse_output` returns."""

    def missing_input_args(self, row: Dict[str, Any]) -> List[str]:
        """The keys of `input_args_names` absent from `row` (or set to `None`)."""
        return [name for name in self.input_args_names if row.get(name) is None]
