"""distilabel 1.x's way of calling an LLM: conversations in, `generations` and `statistics`
out, on every LLM kind (`generate_outputs`).

A conversation travels the same path as a task's row, as a row of its own kind
(`{CONVERSATION: messages}`) that every LLM renders as the messages themselves, so that it
reaches a `ProcessLLM` child, a Ray actor or a pool member with nothing added on the way.
"""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any, Dict, List, Optional, Sequence, Union

from distilabel_llm.llm.core.outputs import GenerateOutput, LLMOutput, token_counts
from distilabel_llm.tasks.prompt import ChatMessages

__all__ = ["CONVERSATION", "Conversation", "generate_outputs"]

CONVERSATION = "__conversation__"
"""The key of a row that holds a conversation rather than a task's inputs."""

Conversation = Union[str, ChatMessages]


def generate_outputs(
    llm: Any,
    inputs: Sequence[Conversation],
    num_generations: int = 1,
    generation_kwargs: Optional[Dict[str, Any]] = None,
) -> List[GenerateOutput]:
    """`num_generations` generations for each conversation of `inputs`, through `llm` (any LLM
    kind), in the shape distilabel 1.x returns them; see `LLM.generate_outputs`."""
    rows = [{CONVERSATION: _checked(position, item)} for position, item in enumerate(inputs)]
    result = llm.generate(
        rows, num_generations=num_generations, generation_kwargs=generation_kwargs
    )
    if isinstance(result, Future):
        result = result.result()
    return [_as_output(row) for row in result]


def _checked(position: int, item: Any) -> Conversation:
    if isinstance(item, str):
        return item
    if isinstance(item, list) and item and all(_is_message(message) for message in item):
        return item
    raise TypeError(
        f"Input {position} must be a conversation: a list of {{'role': ..., 'content': ...}} "
        f"messages with string values (or a plain string prompt), not {item!r}."
    )


def _is_message(message: Any) -> bool:
    return (
        isinstance(message, dict)
        and isinstance(message.get("role"), str)
        and isinstance(message.get("content"), str)
    )


def _as_output(outputs: List[LLMOutput]) -> GenerateOutput:
    return GenerateOutput(
        generations=[output["raw_output"] for output in outputs],
        statistics=token_counts(outputs),
        errors=[output.get("error") for output in outputs],
    )
