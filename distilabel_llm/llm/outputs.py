"""The record every LLM returns for one generation."""

# No `from __future__ import annotations` here: TypedDict reads `NotRequired` from evaluated
# annotations, and postponed ones would list `statistics` and `error` as required at runtime.
from typing import Any, Dict, List, Optional, Union

from typing_extensions import NotRequired, TypedDict


class TokenStatistics(TypedDict, total=False):
    """Token counts reported by a backend for one generation."""

    input_tokens: int
    output_tokens: int


class LLMOutput(TypedDict):
    """One generation: the prompt sent, the raw text back, and the task's parse of it.

    `prompt_used`, `raw_output` and `parsed_output` are `None` when the row was not sent (an
    input missing a key the task needs) or when the backend failed on it, and then `error`
    says why; `parsed_output` is also `None` when the task could not parse `raw_output`.
    """

    model_name: str
    prompt_used: Optional[Union[str, List[Dict[str, str]]]]
    raw_output: Optional[str]
    parsed_output: Optional[Dict[str, Any]]
    statistics: NotRequired[TokenStatistics]
    error: NotRequired[str]
