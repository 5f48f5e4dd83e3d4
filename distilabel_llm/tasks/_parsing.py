"""Reading a rating model's answer: the sections it writes per generation, numbers, JSON."""

from __future__ import annotations

import json
import re
from typing import Any, Callable, Dict, List, Optional

from distilabel_llm.errors import OutputParsingError

__all__ = ["json_answer", "numbered", "numbered_answers", "sections"]

_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def sections(output: str, heading: str, owner: str) -> List[str]:
    """The text under each heading line that starts with `heading` and ends with a number
    (`#### Critique of Answer 2`), in order.

    Raises:
        OutputParsingError: if there is no such heading.
    """
    pattern = re.compile(rf"^\s*#*\s*{heading}\s*\d+\s*:?\s*$", re.MULTILINE | re.IGNORECASE)
    found = pattern.split(output)[1:]
    if not found:
        raise OutputParsingError(
            f"{owner} expected sections headed '{heading} N' in the model's output: {output!r}"
        )
    return found


def numbered(text: str) -> Optional[float]:
    """The first number in `text`, or None."""
    match = _NUMBER.search(text)
    return float(match.group()) if match else None


def numbered_answers(generations: List[str], label: str) -> str:
    """The generations, each headed `### <label> N`."""
    return "\n\n".join(
        f"### {label} {i}\n{generation}" for i, generation in enumerate(generations, start=1)
    )


def json_answer(
    output: str, parse: Callable[[Any], Dict[str, Any]], owner: str, what: str
) -> Dict[str, Any]:
    """`parse` applied to `output` read as JSON (a task's JSON mode).

    Raises:
        OutputParsingError: naming `what` the task expected, if either step fails.
    """
    try:
        return parse(json.loads(output))
    except (ValueError, KeyError, TypeError) as error:
        raise OutputParsingError(f"{owner} expected a JSON object of {what}: {error}") from None
