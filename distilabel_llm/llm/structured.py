"""Structured output: outputs constrained to a JSON schema, a regular expression or choices.

The `structured_output` generation setting asks for it (see `llm.generation`); each backend
hands it to the engine its ecosystem trusts (llama.cpp's grammars, llguidance for
transformers, the server's `response_format` for OpenAI). This module reads what comes back:
the parsed object goes to `parsed_output` (a pydantic instance when a model class was given);
an output that still does not fit (cut off by `max_new_tokens`) keeps `raw_output` and gets
`parsed_output=None` and an `error` saying why.

A pydantic class cannot always cross into a child process or a Ray actor (one defined in a
script cannot), so `RemoteLLM` sends the schema alone and builds the instances on its side.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple

if TYPE_CHECKING:
    from distilabel_llm.llm.outputs import LLMOutput
    from distilabel_llm.tasks.base import Task

__all__ = ["parse_structured", "split_model", "task_structured_output", "with_models"]

_VALIDATORS: Dict[str, Any] = {}  # jsonschema validators, by schema

STRUCTURED = "structured_output"


def task_structured_output(task: Task) -> Optional[Dict[str, Any]]:
    """The task's own structured output (a rating task in JSON mode), marked as the task's so
    that its fields are read from the object; None if it has none."""
    schema = getattr(task, "structured_output", None)
    return None if schema is None else {"json_schema": schema, "task": True}


def parse_structured(
    raw_output: Optional[str], spec: Dict[str, Any], task: Task
) -> Tuple[Any, Optional[str]]:
    """`raw_output` read as `spec` asks: `(parsed_output, None)`, or `(None, why)`."""
    if raw_output is None:
        return None, None
    try:
        if "json_schema" in spec:
            value = json.loads(raw_output)
            _validate(value, spec["json_schema"])
            if spec.get("task"):
                return task.parse_structured(value), None  # type: ignore[attr-defined]
            model = spec.get("model")
            return (model.model_validate(value) if model is not None else value), None
        if "regex" in spec:
            if re.fullmatch(spec["regex"], raw_output) is None:
                raise ValueError(f"it does not match {spec['regex']!r}")
            return raw_output, None
        if raw_output not in spec["choice"]:
            raise ValueError(f"it is not one of {spec['choice']}")
        return raw_output, None
    except Exception as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        return None, (
            f"the output is not the structured output asked for ({reason}); it may have been "
            "cut off by max_new_tokens"
        )


def split_model(settings: Dict[str, Any]) -> Tuple[Dict[str, Any], Any]:
    """`settings` without the pydantic class of their structured output, and that class."""
    spec = settings.get(STRUCTURED)
    if not isinstance(spec, dict) or spec.get("model") is None:
        return settings, None
    plain = {key: value for key, value in spec.items() if key != "model"}
    return {**settings, STRUCTURED: plain}, spec["model"]


def with_models(rows: List[List[LLMOutput]], model: Any) -> List[List[LLMOutput]]:
    """`rows` with each parsed dict turned into an instance of `model` (in place)."""
    for row in rows:
        for output in row:
            if isinstance(output.get("parsed_output"), dict):
                try:
                    output["parsed_output"] = model.model_validate(output["parsed_output"])
                except Exception as error:
                    output["parsed_output"] = None
                    output["error"] = f"the output does not fit {model.__name__}: {error}"
    return rows


def _validate(value: Any, schema: Dict[str, Any]) -> None:
    """Checks `value` against `schema` with `jsonschema` when it is installed: an engine may
    leave a keyword of the schema out of its grammar."""
    key = json.dumps(schema, sort_keys=True)
    validator = _VALIDATORS.get(key)
    if validator is None:
        try:
            import jsonschema
        except ImportError:  # the engine's grammar is then the only check
            return
        # `jsonschema.validate` checks the schema itself first, every call: about 2 ms.
        validator = jsonschema.validators.validator_for(schema)(schema)
        if len(_VALIDATORS) >= 64:
            _VALIDATORS.clear()
        _VALIDATORS[key] = validator
    validator.validate(value)
