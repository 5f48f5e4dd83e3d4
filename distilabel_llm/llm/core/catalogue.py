"""The catalogue of generation settings: one name, one meaning and one check for each.

Every setting has one name and one meaning on every backend (`max_new_tokens`, `temperature`,
`top_p`, `stop`, `seed`...); each backend lists the names it accepts in
`supported_generation_kwargs` and maps them onto its library. `check_generation_kwargs` checks
a user's dict against the catalogue; `GenerationSettings` (in `settings`) is what a call
carries once checked.
"""

from __future__ import annotations

import copy
import math
import numbers
import reprlib
from dataclasses import dataclass
from typing import (
    Any,
    Callable,
    Dict,
    Iterable,
    List,
    Mapping,
    NamedTuple,
    Optional,
    Set,
    Tuple,
)

from distilabel_llm.errors import GenerationSettingsError
from distilabel_llm.llm.core.structured import check_structured_output, json_problem

__all__ = ["GENERATION_SETTINGS", "OFFSET", "GenerationSetting", "check_generation_kwargs"]

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
        try:
            value = float(value)
        except OverflowError:  # an int too large for a float
            value = math.inf
        if not math.isfinite(value):  # NaN passes every comparison below
            raise ValueError("no backend takes NaN or an infinity; give a finite number")
        if low is not None and (value <= low if above else value < low):
            raise ValueError
        if high is not None and value > high:
            raise ValueError
        return value

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


def _json_object(value: Any) -> Dict[str, Any]:
    """A dict of fields sent as they are in a JSON request."""
    if not isinstance(value, Mapping):
        raise TypeError
    problem = json_problem(value if isinstance(value, dict) else dict(value))
    if problem is not None:
        raise ValueError(f"it is sent as JSON, and {problem}")
    return dict(value)


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
        GenerationSetting("extra_body", "a dict", _json_object, "extra JSON fields per request"),
        GenerationSetting(
            "structured_output",
            "a JSON schema (a dict, or a pydantic model class), a regular expression (a "
            "string) or a list of choices",
            check_structured_output,
            "constrain every output to that shape",
        ),
        GenerationSetting(
            "response_format",
            'a dict such as {"type": "json_object"}',
            _json_object,
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
    if not isinstance(kwargs, Mapping):
        raise GenerationSettingsError(
            f"`generation_kwargs` must be a dict of settings, not {type(kwargs).__name__}."
        )
    last = _last_checked
    if last is not None and _is_remembered(last, owner, supported, kwargs):
        return dict(last.checked)  # a job sends the same settings call after call
    accepted = None if supported is None else {*supported, OFFSET}
    checked: Dict[str, Any] = {}
    for name, value in kwargs.items():
        setting = GENERATION_SETTINGS.get(name)
        if setting is None or (accepted is not None and name not in accepted):
            raise setting_not_taken(name, owner, accepted)
        try:
            checked[name] = setting.check(value)
        except (TypeError, ValueError) as error:
            raise _refused(setting, value, str(error)) from None
    _remember(owner, supported, kwargs, checked)
    return checked


def setting_not_taken(
    name: str, owner: str, accepted: Optional[Set[str]]
) -> GenerationSettingsError:
    """The error for a setting `owner` does not take, naming those it does."""
    what = (
        "is not a generation setting"
        if name not in GENERATION_SETTINGS
        else (f"is not one {owner} takes")
    )
    choices = sorted((accepted if accepted is not None else set(GENERATION_SETTINGS)) - {OFFSET})
    return GenerationSettingsError(
        f"`{name}` {what}; {owner} accepts: {', '.join(choices)}. Fix or drop it in "
        "`generation_kwargs`."
    )


def _refused(setting: GenerationSetting, value: Any, reason: str) -> GenerationSettingsError:
    """The error for `value` of `setting`: the check's reason when it gave one (the value is of
    the right kind, so that says what is wrong with it), else what the setting takes."""
    if reason:
        return GenerationSettingsError(
            f"Generation setting `{setting.name}` cannot be {_SHORT.repr(value)}: {reason}."
        )
    return GenerationSettingsError(
        f"Generation setting `{setting.name}` must be {setting.accepts}, not {value!r}."
    )


_SHORT = reprlib.Repr()  # a value in an error: a whole JSON schema would drown the reason
_SHORT.maxstring = _SHORT.maxother = 80
_SHORT.maxlevel = 2


class _Checked(NamedTuple):
    """Settings checked, and the result."""

    owner: str
    supported: Any
    kwargs: Dict[str, Any]  # a copy: the caller may change its own dict afterwards
    types: List[type]  # the type of each value of `kwargs`, in order
    nested: Tuple[str, ...]  # the names whose values hold other values
    checked: Dict[str, Any]


# The last settings checked: replaced whole, so threads share it safely. Checking costs
# microseconds, which matters only on a no-op model's round trips (it runs up to three times
# per call); comparing with the last settings costs a fraction of that.
_last_checked: Optional[_Checked] = None
_CONTAINERS = (dict, list, tuple)  # values whose types are compared item by item


def _is_remembered(last: _Checked, owner: str, supported: Any, kwargs: Mapping[str, Any]) -> bool:
    """Whether `kwargs` are the settings `last` checked, for the same backend: equal, and of
    the same types all through, since `True == 1` and `5.0 == 5` but a setting may take one
    and refuse the other."""
    remembered = last.kwargs
    try:
        return (
            last.owner == owner
            and last.supported == supported
            and remembered == kwargs
            and [type(kwargs[name]) for name in remembered] == last.types
            and (not last.nested or all(_same_types(remembered[n], kwargs[n]) for n in last.nested))
        )
    except Exception:  # a value that cannot be compared (a numpy array): checked afresh
        return False


def _same_types(remembered: Any, given: Any) -> bool:
    """Whether `given`, equal to `remembered`, has its types all through."""
    if type(given) is not type(remembered):
        return False
    if isinstance(remembered, dict):
        return all(_same_types(value, given[key]) for key, value in remembered.items())
    if isinstance(remembered, _CONTAINERS):
        return all(map(_same_types, remembered, given))
    return True


def _remember(
    owner: str, supported: Any, kwargs: Mapping[str, Any], checked: Dict[str, Any]
) -> None:
    global _last_checked
    try:
        remembered = copy.deepcopy(dict(kwargs))
    except Exception:  # a value that cannot be copied: never cached
        _last_checked = None
        return
    types = [type(value) for value in remembered.values()]
    nested = tuple(name for name, value in remembered.items() if isinstance(value, _CONTAINERS))
    _last_checked = _Checked(owner, supported, remembered, types, nested, dict(checked))
