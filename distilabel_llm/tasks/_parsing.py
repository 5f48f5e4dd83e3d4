"""Reading a rating model's answer: the sections it writes per generation, numbers, indexed
scores, JSON."""

from __future__ import annotations

import json
import re
from typing import Any, Callable, Dict, List, Optional

from distilabel_llm.errors import OutputParsingError

__all__ = [
    "indexed_items",
    "indexed_scores",
    "json_answer",
    "numbered",
    "numbered_answers",
    "sections",
]

_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
# "[2] Score: 4" as our scorers ask, or "[Response 2] Score: 4" as legacy's quality scorer did.
_SCORE_LINE = re.compile(
    r"^\s*\[(?:Response\s*)?(\d+)\]\s*Score\s*:\s*(-?\d+(?:\.\d+)?)", re.MULTILINE | re.I
)


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


def indexed_items(items: List[str]) -> str:
    """The items one a line, each after its index: `[1] first`."""
    return "\n".join(f"[{i}] {item}" for i, item in enumerate(items, start=1))


def indexed_scores(output: str, owner: str) -> List[float]:
    """The scores of items 1..N from lines `[N] Score: <score>`, N the highest item scored.

    Raises:
        OutputParsingError: if there is no such line, or an item below N has none.
    """
    found = {int(index): float(score) for index, score in _SCORE_LINE.findall(output)}
    missing = [i for i in range(1, max(found, default=0) + 1) if i not in found]
    if not found or missing:
        raise OutputParsingError(
            f"{owner} expected a line '[N] Score: <score>' for every item"
            f"{f' (none for {missing})' if missing else ''} in the model's output: {output!r}"
        )
    return [found[i] for i in range(1, len(found) + 1)]


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
