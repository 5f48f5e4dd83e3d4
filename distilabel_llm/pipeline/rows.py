"""The columns a pipeline adds to a row, built from an LLM's outputs or from a failure."""

from __future__ import annotations

import random
from typing import Any, Dict, List, Optional

from distilabel_llm.llm.core.outputs import LLMOutput, token_counts
from distilabel_llm.tasks.base import Task

__all__ = [
    "ERROR_COLUMN",
    "GENERATION_FAILED",
    "LABELLING_FAILED",
    "PROMPT_COLUMNS",
    "generation_columns",
    "generation_fields",
    "labelling_columns",
    "labelling_fields",
    "no_text_error",
    "shuffle_generations",
]

ERROR_COLUMN = "error"
"""`None` for a row that went through, else why its generation or labelling failed."""

GENERATION_FAILED = "generation failed: "
LABELLING_FAILED = "labelling failed: "
"""How `error` starts when the model raised on the row (rather than the row lacking input)."""

_GENERATION_META = [
    "generation_model",
    "generation_prompt",
    "raw_generation_responses",
    "generation_statistics",
]
_LABELLING_META = [
    "labelling_model",
    "labelling_prompt",
    "raw_labelling_response",
    "labelling_statistics",
]
PROMPT_COLUMNS = ("generation_prompt", "labelling_prompt")
"""The prompts as sent (legacy distilabel's columns); a job may leave them out."""


def generation_columns(task: Task) -> List[str]:
    """The columns the generator adds: one list per column, one item per generation."""
    return [*_GENERATION_META, *task.output_args_names]


def labelling_columns(task: Task) -> List[str]:
    """The columns the labeller adds."""
    return [*_LABELLING_META, *task.output_args_names]


def generation_fields(task: Task, outputs: Optional[List[LLMOutput]]) -> Dict[str, Any]:
    """The generator's columns for one row; all `None` when `outputs` is `None` (failed).

    Each parsed field becomes a list with one item per generation, `None` where the task could
    not parse that generation (its raw text stays in `raw_generation_responses`).
    `generation_statistics` holds the token counts as distilabel 1.x writes them:
    `{"input_tokens": [...], "output_tokens": [...]}`, one entry per generation.
    """
    if outputs is None:
        return dict.fromkeys(generation_columns(task))
    fields: Dict[str, Any] = {
        "generation_model": [output["model_name"] for output in outputs],
        "generation_prompt": [output["prompt_used"] for output in outputs],
        "raw_generation_responses": [output["raw_output"] for output in outputs],
        "generation_statistics": token_counts(outputs),
    }
    for name in task.output_args_names:
        fields[name] = [_field(task, output["parsed_output"], name) for output in outputs]
    return fields


def labelling_fields(task: Task, output: Optional[LLMOutput]) -> Dict[str, Any]:
    """The labeller's columns for one row; all `None` when `output` is `None` (not labelled)."""
    if output is None:
        return dict.fromkeys(labelling_columns(task))
    fields: Dict[str, Any] = {
        "labelling_model": output["model_name"],
        "labelling_prompt": output["prompt_used"],
        "raw_labelling_response": output["raw_output"],
        "labelling_statistics": token_counts([output]),
    }
    for name in task.output_args_names:
        fields[name] = _field(task, output["parsed_output"], name)
    return fields


def no_text_error(prefix: str, outputs: List[LLMOutput]) -> Optional[str]:
    """The error of a row missing the text of any of its outputs, else `None`.

    A row is done only when every generation has text: one without (a request that failed
    after its retries, which backends return as `raw_output=None` with the reason in the
    output's `error`) makes the row fail, so that the job's next run sends it again. An output
    that is not the structured output asked for (cut off) keeps its text and its `error`; the
    row fails when every output is such.
    """
    missing = [k for k, output in enumerate(outputs) if output["raw_output"] is None]
    if missing:
        first = outputs[missing[0]]
        reason = first.get("error") or "its reason is in the log"
        if len(missing) == len(outputs):
            return f"{prefix}{first['model_name']} returned no text for this row ({reason})"
        indexes = ", ".join(str(k) for k in missing)
        return (
            f"{prefix}{first['model_name']} returned no text for {len(missing)} of this row's "
            f"{len(outputs)} generations (index {indexes}: {reason})"
        )
    if outputs and all(output.get("error") for output in outputs):
        return f"{prefix}{outputs[0]['model_name']}: {outputs[0]['error']}"
    return None


def _field(task: Task, parsed: Any, name: str) -> Any:
    """The value of output field `name`: the task's parse gives a dict of its fields; a
    structured output asked for by the caller (any object) fills a task's only field."""
    if hasattr(parsed, "model_dump"):  # a pydantic instance: written as its fields
        parsed = parsed.model_dump()
    if isinstance(parsed, dict) and name in parsed:
        return parsed[name]
    if parsed is not None and len(task.output_args_names) == 1:
        return parsed
    return None


def shuffle_generations(row: Dict[str, Any], task: Task, rng: random.Random) -> None:
    """Puts a row's generations in a random order, every generator column alike, so that a
    labeller cannot favour one model for coming first (legacy `shuffle_before_labelling`)."""
    responses = row.get("raw_generation_responses")
    if not isinstance(responses, list) or len(responses) < 2:
        return
    order = rng.sample(range(len(responses)), len(responses))
    for column in generation_columns(task):
        value = row.get(column)
        if isinstance(value, list) and len(value) == len(order):
            row[column] = [value[i] for i in order]
        elif isinstance(value, dict):  # the statistics: a list per count
            row[column] = {key: [counts[i] for i in order] for key, counts in value.items()}
