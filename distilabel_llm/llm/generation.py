"""Generation settings (`generation_kwargs`): one catalogue of names, checked before any work.

Every setting has one name and one meaning on every backend (`max_new_tokens`, `temperature`,
`top_p`, `stop`, `seed`...); each backend lists the names it accepts in
`supported_generation_kwargs` and maps them onto its library. A call's settings are its LLM's
defaults with the call's overrides on top, and they travel as plain data (a dict) to wherever
the model runs: a `ProcessLLM` child, a Ray actor, every member of a pool.

`generation_offset` is the one setting every LLM accepts: the index of the first generation
slot a call fills in each row. A pool that splits a row's generations over its members sends
each member its slots' offset, so that slot `k` is sampled with seed `seed + k` whoever makes
it, and replicas never repeat each other's samples.
"""

from __future__ import annotations

import copy
import numbers
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from distilabel_llm.errors import GenerationSettingsError

__all__ = ["GENERATION_SETTINGS", "GenerationSetting", "check_generation_kwargs"]

OFFSET = "generation_offset"


@dataclass(frozen=True)
class GenerationSetting:
    """One generation setting: what values it takes, and what it does.

    Attributes:
        name: its name in `generation_kwargs`.
        accepts: what values it takes, in words, for error messages.
        check: returns the value as the backend gets it, or raises ValueError/TypeError.
        help: what it does.
    """

    name: str
    accepts: str
    check: Callable[[Any], Any]
    help: str


def _number(low: Optional[float] = None, high: Optional[float] = None, *, above: bool = False):
    def check(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError
        if low is not None and (value <= low if above else value < low):
            raise ValueError
        if high is not None and value > high:
            raise ValueError
        return float(value)

    return check


def _integer(low: Optional[int] = None):
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise TypeError
        if low is not None and value < low:
            raise ValueError
        return int(value)

    return check


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError
    return value


def _stop(value: Any) -> List[str]:
    stops = [value] if isinstance(value, str) else value
    if not isinstance(stops, (list, tuple)) or not all(isinstance(s, str) and s for s in stops):
        raise TypeError
    return list(stops)


def _mapping(value: Any) -> Dict[str, Any]:
    if not isinstance(value, Mapping):
        raise TypeError
    return dict(value)


def _structured(value: Any) -> Dict[str, Any]:
    """`structured_output` as one of `{"json_schema": schema}` (with `"model": cls` when a
    pydantic model was given), `{"regex": pattern}` or `{"choice": [strings]}`."""
    if isinstance(value, type) and hasattr(value, "model_json_schema"):  # a pydantic model
        return {"json_schema": value.model_json_schema(), "model": value}
    if isinstance(value, str):
        return {"regex": value}
    if isinstance(value, (list, tuple)):
        if not value or not all(isinstance(item, str) for item in value):
            raise TypeError
        return {"choice": list(value)}
    if not isinstance(value, Mapping):
        raise TypeError
    keys = set(value) & {"json_schema", "regex", "choice"}
    if not keys:
        return {"json_schema": dict(value)}  # a JSON schema itself
    if len(keys) > 1:
        raise ValueError
    spec = dict(value)
    (key,) = keys
    if key == "json_schema" and isinstance(spec[key], type):
        return {**_structured(spec[key]), **{k: v for k, v in spec.items() if k != key}}
    expected = {"json_schema": Mapping, "regex": str, "choice": (list, tuple)}[key]
    if not isinstance(spec[key], expected):
        raise TypeError
    return spec


def _offset(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_integer(0)(item) for item in value]
    return _integer(0)(value)


GENERATION_SETTINGS: Dict[str, GenerationSetting] = {
    setting.name: setting
    for setting in (
        GenerationSetting("max_new_tokens", "an int >= 1", _integer(1), "most tokens per output"),
        GenerationSetting(
            "temperature", "a number >= 0", _number(0), "sampling temperature; 0 decodes greedily"
        ),
        GenerationSetting("top_p", "a number in (0, 1]", _number(0, 1, above=True), "nucleus"),
        GenerationSetting("top_k", "an int >= 0", _integer(0), "sample from the k likeliest"),
        GenerationSetting("min_p", "a number in [0, 1]", _number(0, 1), "drop unlikely tokens"),
        GenerationSetting("typical_p", "a number in (0, 1]", _number(0, 1, above=True), "typical"),
        GenerationSetting(
            "repetition_penalty", "a number > 0", _number(0, above=True), "1.0 for none"
        ),
        GenerationSetting("frequency_penalty", "a number", _number(), "OpenAI-style penalty"),
        GenerationSetting("presence_penalty", "a number", _number(), "OpenAI-style penalty"),
        GenerationSetting(
            "stop", "a string or a list of strings", _stop, "end an output at any of these"
        ),
        GenerationSetting(
            "seed", "an int >= 0", _integer(0), "base seed: slot k of a row uses seed + k"
        ),
        GenerationSetting("do_sample", "True or False", _boolean, "sample rather than greedy"),
        GenerationSetting("extra_body", "a dict", _mapping, "extra JSON fields per request"),
        GenerationSetting(
            "structured_output",
            "a JSON schema (a dict, or a pydantic model class), a regular expression (a "
            "string) or a list of choices",
            _structured,
            "constrain every output to that shape",
        ),
        GenerationSetting(
            "response_format",
            'a dict such as {"type": "json_object"}',
            _mapping,
            "OpenAI's answer format (JSON mode)",
        ),
        GenerationSetting(
            OFFSET,
            "an int >= 0, or a list of them (one per row)",
            _offset,
            "index of the first generation slot the call fills in each row",
        ),
    )
}


def check_generation_kwargs(
    kwargs: Optional[Mapping[str, Any]],
    supported: Optional[Iterable[str]],
    owner: str,
) -> Dict[str, Any]:
    """`kwargs` checked: every name known (and, when `supported` is given, accepted by the
    backend) and every value of the right kind; returns them as the backend gets them.

    Args:
        kwargs: the settings to check.
        supported: the names the backend accepts; None when it is not known yet (a model
            still loading elsewhere), which checks the names against the catalogue only.
        owner: who checks, named in the error (e.g. "LlamaCppLLM").

    Raises:
        GenerationSettingsError: (a `ValueError`) naming the setting, what it takes, and the
            names the backend accepts.
    """
    if not kwargs:
        return {}
    last = _last_checked
    if last is not None and last[0] == owner and last[1] == supported and last[2] == kwargs:
        return dict(last[3])  # a job sends the same settings call after call
    if not isinstance(kwargs, Mapping):
        raise GenerationSettingsError(
            f"`generation_kwargs` must be a dict of settings, not {type(kwargs).__name__}."
        )
    accepted = None if supported is None else {*supported, OFFSET}
    checked: Dict[str, Any] = {}
    for name, value in kwargs.items():
        setting = GENERATION_SETTINGS.get(name)
        if setting is None or (accepted is not None and name not in accepted):
            choices = sorted(accepted if accepted is not None else GENERATION_SETTINGS)
            what = "is not a generation setting" if setting is None else f"is not one {owner} takes"
            raise GenerationSettingsError(
                f"`{name}` {what}; {owner} accepts: {', '.join(choices)}. Fix or drop it in "
                "`generation_kwargs`."
            )
        try:
            checked[name] = setting.check(value)
        except (TypeError, ValueError):
            raise GenerationSettingsError(
                f"Generation setting `{name}` must be {setting.accepts}, not {value!r}."
            ) from None
    _remember(owner, supported, kwargs, checked)
    return checked


# The last settings checked, and the result: one tuple, replaced whole, so threads share it
# safely. Checking costs microseconds, which matters only on a no-op model's round trips.
_last_checked: Optional[Tuple[str, Any, Dict[str, Any], Dict[str, Any]]] = None


def _remember(
    owner: str, supported: Any, kwargs: Mapping[str, Any], checked: Dict[str, Any]
) -> None:
    global _last_checked
    try:
        _last_checked = (owner, supported, copy.deepcopy(dict(kwargs)), dict(checked))
    except Exception:  # a value that cannot be copied: never cached
        _last_checked = None


def row_offsets(kwargs: Mapping[str, Any], rows: int) -> List[int]:
    """The first generation slot of each of `rows` rows, from `generation_offset`.

    Raises:
        GenerationSettingsError: if a list of offsets does not have one per row.
    """
    offset = kwargs.get(OFFSET, 0)
    if isinstance(offset, int):
        return [offset] * rows
    if len(offset) != rows:
        raise GenerationSettingsError(
            f"`{OFFSET}` lists {len(offset)} offsets for {rows} rows; give one per row, or one "
            "int for all."
        )
    return list(offset)


def without_offset(kwargs: Optional[Mapping[str, Any]]) -> Dict[str, Any]:
    """`kwargs` without `generation_offset`: what calls must share to be merged into one."""
    return {name: value for name, value in (kwargs or {}).items() if name != OFFSET}


def sliced_offsets(kwargs: Mapping[str, Any], rows: Sequence[int]) -> Dict[str, Any]:
    """`kwargs` for the rows at positions `rows` of the call, with their offsets."""
    if OFFSET not in kwargs or isinstance(kwargs[OFFSET], int):
        return dict(kwargs)
    return {**kwargs, OFFSET: [kwargs[OFFSET][row] for row in rows]}
