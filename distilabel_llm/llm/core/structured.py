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
import math
import re
import reprlib
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Set, Tuple

if TYPE_CHECKING:
    from distilabel_llm.llm.core.outputs import LLMOutput
    from distilabel_llm.tasks.base import Task

__all__ = [
    "check_structured_output",
    "json_problem",
    "parse_structured",
    "task_structured_output",
    "with_models",
]

_VALIDATORS: Dict[str, Any] = {}  # jsonschema validators, by schema

STRUCTURED = "structured_output"
_KINDS = {"json_schema": Mapping, "regex": str, "choice": (list, tuple)}


def check_structured_output(value: Any) -> Dict[str, Any]:
    """`structured_output` as one of `{"json_schema": schema}` (with `"model": cls` when a
    pydantic model was given), `{"regex": pattern}` or `{"choice": [strings]}`.

    Raises:
        TypeError: `value` is none of these.
        ValueError: it names more than one, or its JSON schema cannot be sent as JSON (the
            message says where and why).
    """
    if _is_model(value):
        return {"json_schema": _model_schema(value), "model": value}
    if isinstance(value, str):
        return {"regex": value}
    if isinstance(value, (list, tuple)):
        if not value or not all(isinstance(item, str) for item in value):
            raise TypeError
        return {"choice": list(value)}
    if not isinstance(value, Mapping):
        raise TypeError
    keys = set(value) & set(_KINDS)
    if not keys:
        return {"json_schema": _json_schema(value)}  # a JSON schema itself
    if len(keys) > 1:
        raise ValueError(f"it names {' and '.join(sorted(keys))}; give one")
    spec = dict(value)
    (key,) = keys
    if key == "json_schema" and _is_model(spec[key]):
        return {**check_structured_output(spec[key]), **{k: v for k, v in spec.items() if k != key}}
    if not isinstance(spec[key], _KINDS[key]):
        raise TypeError
    if key == "json_schema":
        spec[key] = _json_schema(spec[key])
    return spec


def json_problem(value: Any) -> Optional[str]:
    """What stops `value` from being sent as JSON, and where (`$` is `value` itself); None if
    nothing does. `json.dumps` would say less, or nothing: it writes NaN, which servers
    refuse, and turns keys such as `1` into strings."""
    return _json_problem(value, "$", set())


def _json_problem(value: Any, path: str, open_ids: Set[int]) -> Optional[str]:
    """`json_problem` of `value`, found at `path`, inside the containers `open_ids`."""
    if isinstance(value, float):
        return (
            None if math.isfinite(value) else f"`{path}` is {value!r}, which JSON has no form for"
        )
    if value is None or isinstance(value, (str, int)):
        return None
    if not isinstance(value, (dict, list, tuple)):
        kind = "a set; use a list" if isinstance(value, (set, frozenset)) else "not JSON"
        return (
            f"`{path}` is {reprlib.repr(value)}, {kind} (JSON takes dicts, lists, strings, "
            "finite numbers, booleans and None)"
        )
    if id(value) in open_ids:  # json.dumps would raise "Circular reference detected"
        return (
            f"`{path}` is the {type(value).__name__} that holds it, a loop JSON cannot write "
            '(a JSON schema refers to itself with "$ref")'
        )
    open_ids.add(id(value))
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, item in items:
        if isinstance(value, dict) and not isinstance(key, str):
            return f"`{path}` has the key {key!r}; JSON keys are strings"
        where = f"{path}.{key}" if isinstance(value, dict) else f"{path}[{key}]"
        problem = _json_problem(item, where, open_ids)
        if problem is not None:
            return problem
    open_ids.discard(id(value))
    return None


def _is_model(value: Any) -> bool:
    """Whether `value` is a pydantic model class."""
    return isinstance(value, type) and hasattr(value, "model_json_schema")


def _model_schema(model: type) -> Dict[str, Any]:
    """The JSON schema of a pydantic model class, checked as `_json_schema` checks one."""
    try:
        schema = model.model_json_schema()  # type: ignore[attr-defined]
    except Exception as error:  # pydantic's errors differ by version and by cause
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ValueError(
            f"pydantic cannot make a JSON schema of {model.__name__}: {reason}; give its fields "
            "JSON-able types, or pass a JSON schema dict instead"
        ) from error
    return _json_schema(schema)


def _json_schema(schema: Mapping[str, Any]) -> Dict[str, Any]:
    """`schema` as a dict, once it is known to be JSON: every backend sends it, or keys its
    compiled grammar, as JSON."""
    problem = json_problem(schema if isinstance(schema, dict) else dict(schema))
    if problem is not None:
        raise ValueError(f"its JSON schema is sent as JSON, and {problem}")
    return dict(schema)


def task_structured_output(task: Task) -> Optional[Dict[str, Any]]:
    """The task's own structured output (a rating task in JSON mode); None if it has none."""
    schema = getattr(task, "structured_output", None)
    return None if schema is None else {"json_schema": schema}


def parse_structured(
    raw_output: Optional[str],
    spec: Dict[str, Any],
    task: Task,
    model: Optional[type] = None,
    by_task: bool = False,
) -> Tuple[Any, Optional[str]]:
    """`raw_output` read as `spec` asks: `(parsed_output, None)`, or `(None, why)`.

    Args:
        raw_output: the model's text.
        spec: the structured-output spec.
        task: the task, which reads the object when `by_task` (its own JSON mode).
        model: the pydantic class to build the object as, if any.
        by_task: whether `spec` is the task's own.
    """
    if raw_output is None:
        return None, None
    try:
        if "json_schema" in spec:
            value = json.loads(raw_output)
            _validate(value, spec["json_schema"])
            if by_task:
                return task.parse_structured(value), None  # type: ignore[attr-defined]
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
