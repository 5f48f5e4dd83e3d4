"""The `Task` contract: how a row becomes a prompt and a model's text becomes fields.

Every task takes a `system_prompt` and a `template` for its user turn, so that a dataset can be
generated with any wording (legacy distilabel's prompts included) without a subclass; and it
saves to a dict or a JSON file and loads back, so that a job can record the tasks it ran.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
from abc import ABC, abstractmethod
from typing import Any, Callable, Dict, List, Optional, Union

from distilabel_llm.tasks._not_available import module_getattr
from distilabel_llm.tasks.prompt import ChatMessages, Prompt

__all__ = ["PromptTemplate", "Task"]

# Legacy names this module had and that have no counterpart here say what to use instead.
__getattr__ = module_getattr(__name__)

PromptTemplate = Union[str, Callable[..., str]]
"""A user turn: a `str.format` template filled with the task's fields, or a function that
takes them as keyword arguments and returns the text."""


class Task(ABC):
    """Turns an input row into a prompt, and a model's raw text into output fields.

    Subclasses set `system_prompt` and implement the four members below. `generate_prompt`
    may return a `Prompt` (rendered by the LLM in its prompt format) or an already rendered
    string or list of chat messages (sent as is). Built-in tasks are dataclasses with a
    `template` field; `_prompt` fills it.
    """

    system_prompt: str = ""
    template: Optional[PromptTemplate] = None

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

    def _prompt(self, default: str, **fields: Any) -> Prompt:
        """The prompt: `template` filled with `fields` when set, else the task's own `default`.

        Raises:
            ValueError: if the template names a field the task does not have.
        """
        if self.template is None:
            text = default
        elif callable(self.template):
            text = self.template(**fields)
        else:
            try:
                text = self.template.format(**fields)
            except (KeyError, IndexError) as error:
                raise ValueError(
                    f"The template of {type(self).__name__} uses {error}, which is not one of "
                    f"its fields: {', '.join(sorted(fields))}."
                ) from None
        return Prompt(system_prompt=self.system_prompt, formatted_prompt=text)

    # Saving and loading.

    def to_dict(self) -> Dict[str, Any]:
        """The task as plain data: its class and its fields.

        Raises:
            TypeError: if the task is not a dataclass, or a field (a `template` function)
                cannot be written as JSON.
        """
        if not dataclasses.is_dataclass(self):
            raise TypeError(f"{type(self).__name__} is not a dataclass, so it cannot be saved.")
        fields = {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}
        try:
            json.dumps(fields)
        except TypeError as error:
            raise TypeError(
                f"{type(self).__name__} cannot be saved: {error} (a `template` function "
                "cannot; give a string template to save the task)."
            ) from None
        cls = type(self)
        return {"task": f"{cls.__module__}:{cls.__qualname__}", "fields": fields}

    @staticmethod
    def from_dict(data: Dict[str, Any]) -> Task:
        """The task `to_dict` described.

        Raises:
            ValueError: if `data` does not name an importable `Task` class.
        """
        try:
            module_name, _, qualname = data["task"].partition(":")
            cls: Any = importlib.import_module(module_name)
            for part in qualname.split("."):
                cls = getattr(cls, part)
        except (KeyError, AttributeError, ImportError, ValueError) as error:
            raise ValueError(f"Not a saved task: {data!r} ({error}).") from None
        if not (isinstance(cls, type) and issubclass(cls, Task)):
            raise ValueError(f"{data['task']} is not a Task.")
        return cls(**data.get("fields", {}))

    def save(self, path: Union[str, os.PathLike[str]]) -> None:
        """Writes `to_dict()` to the JSON file `path`."""
        with open(path, "w", encoding="utf-8") as file:
            json.dump(self.to_dict(), file, indent=2, ensure_ascii=False)
            file.write("\n")

    @staticmethod
    def load(path: Union[str, os.PathLike[str]]) -> Task:
        """The task saved in the JSON file `path`."""
        with open(path, encoding="utf-8") as file:
            return Task.from_dict(json.load(file))
