"""Prompts and the chat formats they can be rendered in."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Literal, Union, get_args

from distilabel_llm.tasks._not_available import module_getattr

__all__ = ["ChatMessages", "Prompt", "SupportedFormats"]

# Legacy names this module had and that have no counterpart here say what to use instead.
__getattr__ = module_getattr(__name__)

SupportedFormats = Literal["default", "openai", "llama2", "chatml", "zephyr", "notus"]
"""The names `Prompt.format_as` accepts."""

ChatMessages = List[Dict[str, str]]

_SUPPORTED = get_args(SupportedFormats)


@dataclass
class Prompt:
    """A system prompt and a user prompt, renderable in any supported chat format.

    Args:
        system_prompt: the instructions given to the model as the system turn.
        formatted_prompt: the user turn, already filled with the row's inputs.
    """

    system_prompt: str
    formatted_prompt: str

    def format_as(self, format: SupportedFormats) -> Union[str, ChatMessages]:
        """Renders the prompt in `format`.

        Args:
            format: one of `SupportedFormats`.

        Returns:
            A string, or a list of chat messages for `"openai"`.

        Raises:
            ValueError: if `format` is not supported.
        """
        system, prompt = self.system_prompt, self.formatted_prompt
        if format == "default":
            return f"{system}\n{prompt}"
        if format == "openai":
            return [
                {"role": "system", "content": system},
                {"role": "user", "content": prompt},
            ]
        if format == "llama2":
            return f"<s>[INST] <<SYS>>\n{system}<</SYS>>\n\n{prompt} [/INST]"
        if format == "chatml":
            return (
                f"<|im_start|>system\n{system}<|im_end|>\n"
                f"<|im_start|>user\n{prompt}<|im_end|>\n<|im_start|>assistant\n"
            )
        if format in ("zephyr", "notus"):
            return f"<|system|>\n{system}</s>\n<|user|>\n{prompt}</s>\n<|assistant|>\n"
        raise ValueError(
            f"Unknown prompt format {format!r}; the supported formats are "
            f"{', '.join(repr(name) for name in _SUPPORTED)}."
        )
