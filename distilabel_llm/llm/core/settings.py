"""Generation settings: one catalogue of names, checked once where a call enters the library.

Every setting has one name and one meaning on every backend (`max_new_tokens`, `temperature`,
`top_p`, `stop`, `seed`...); each backend lists the names it accepts in
`supported_generation_kwargs` and maps them onto its library. Users give settings as a dict
(`generation_kwargs`); the library checks it once, where the call enters it, into a
`GenerationSettings` value that travels as data to wherever the model runs (a `ProcessLLM`
child, a Ray actor, every member of a pool) and is never checked again on the way.

Beside the user's settings the value carries, as fields of their own, what the library adds:
the structured-output spec with the pydantic class its outputs become, and each row's first
generation slot. A pool that splits a row's generations over its members gives each member its
slots, so that slot `k` is sampled with seed `seed + k` whoever makes it, and replicas never
repeat each other's samples.
"""

from __future__ import annotations

import copy
import math
import numbers
import reprlib
from dataclasses import dataclass, field, replace
from typing import (
    Any,
    Callable,
    Dict,
    Iterable,
    Iterator,
    List,
    Mapping,
    NamedTuple,
    Optional,
    Sequence,
    Set,
    Tuple,
    Union,
)

from distilabel_llm.errors import GenerationSettingsError
from distilabel_llm.llm.core.structured import STRUCTURED, check_structured_output, json_problem

__all__ = [
    "GENERATION_SETTINGS",
    "GenerationRequest",
    "GenerationSetting",
    "GenerationSettings",
    "check_generation_kwargs",
]

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
            raise _not_taken(name, owner, accepted)
        try:
            checked[name] = setting.check(value)
        except (TypeError, ValueError) as error:
            raise _refused(setting, value, str(error)) from None
    _remember(owner, supported, kwargs, checked)
    return checked


def _not_taken(name: str, owner: str, accepted: Optional[Set[str]]) -> GenerationSettingsError:
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


@dataclass(frozen=True, eq=True)
class GenerationSettings(Mapping[str, Any]):
    """A call's generation settings, checked: built once where the call enters the library.

    It reads as a mapping of the user's settings, which is what a backend maps onto its
    library; what the library adds travels beside them.

    Attributes:
        values: the user's settings, checked (never `structured_output`: see `structured`).
        structured: the structured-output spec (`{"json_schema": ...}`, `{"regex": ...}` or
            `{"choice": [...]}`), or None.
        structured_model: the pydantic class outputs are built as. Not sent to other
            processes (a class defined in a script cannot cross): the side that sent the call
            builds the instances.
        structured_by_task: the spec is the task's own (a rating task's JSON mode), so outputs
            are read by the task.
        offsets: the first generation slot of every row, or one int for all.
    """

    values: Dict[str, Any] = field(default_factory=dict)
    structured: Optional[Dict[str, Any]] = None
    structured_model: Optional[type] = field(default=None, compare=False)
    structured_by_task: bool = False
    offsets: Union[int, Tuple[int, ...]] = 0

    __hash__ = None  # type: ignore[assignment]

    @classmethod
    def from_kwargs(
        cls,
        kwargs: Optional[Mapping[str, Any]],
        supported: Optional[Iterable[str]] = None,
        owner: str = "this LLM",
    ) -> GenerationSettings:
        """Checks a user's `generation_kwargs` into a value; see `check_generation_kwargs`."""
        checked = check_generation_kwargs(kwargs, supported, owner)
        if not checked:
            return _NONE
        spec = checked.pop(STRUCTURED, None)
        offsets = checked.pop(OFFSET, 0)
        model = None
        if spec is not None:
            spec = dict(spec)
            model = spec.pop("model", None)
        return cls(
            checked,
            spec,
            model,
            False,
            offsets if isinstance(offsets, int) else tuple(offsets),
        )

    def __getitem__(self, name: str) -> Any:
        return self.values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.values)

    def __len__(self) -> int:
        return len(self.values)

    def __reduce__(self) -> Any:  # crosses to children and actors without the class
        return (
            type(self),
            (self.values, self.structured, None, self.structured_by_task, self.offsets),
        )

    def as_kwargs(self) -> Dict[str, Any]:
        """The settings as a user would give them: `generation_kwargs`."""
        kwargs = dict(self.values)
        if self.structured is not None and not self.structured_by_task:
            kwargs[STRUCTURED] = (
                self.structured
                if self.structured_model is None
                else {**self.structured, "model": self.structured_model}
            )
        return kwargs

    def over(self, defaults: GenerationSettings) -> GenerationSettings:
        """These settings over an LLM's `defaults`: a value given here wins."""
        if defaults is _NONE:
            return self
        return replace(
            self,
            values={**defaults.values, **self.values},
            structured=self.structured if self.structured is not None else defaults.structured,
            structured_model=(
                self.structured_model if self.structured is not None else defaults.structured_model
            ),
        )

    def with_task_output(self, spec: Optional[Dict[str, Any]]) -> GenerationSettings:
        """These settings with the task's own structured output, unless one is set."""
        if spec is None or self.structured is not None:
            return self
        return replace(self, structured=spec, structured_by_task=True)

    def row_offsets(self, rows: int) -> List[int]:
        """The first generation slot of each of `rows` rows.

        Raises:
            GenerationSettingsError: if the offsets listed are not one per row.
        """
        if isinstance(self.offsets, int):
            return [self.offsets] * rows
        if len(self.offsets) != rows:
            raise GenerationSettingsError(
                f"`{OFFSET}` lists {len(self.offsets)} offsets for {rows} rows; give one per "
                "row, or one int for all."
            )
        return list(self.offsets)

    def with_offsets(self, offsets: Union[int, Sequence[int]]) -> GenerationSettings:
        """These settings with other first slots: one int, or one per row."""
        return replace(self, offsets=offsets if isinstance(offsets, int) else tuple(offsets))

    def for_rows(self, positions: Sequence[int]) -> GenerationSettings:
        """These settings for the rows at `positions` of the call."""
        if isinstance(self.offsets, int):
            return self
        return self.with_offsets([self.offsets[row] for row in positions])

    def same_but_offsets(self, other: GenerationSettings) -> bool:
        """Whether `other` differs from these settings in its offsets at most: the calls of
        both can then be served as one."""
        return (
            self.values == other.values
            and self.structured == other.structured
            and self.structured_by_task == other.structured_by_task
            and self.structured_model is other.structured_model
        )

    def check_supported(self, supported: Iterable[str], owner: str) -> None:
        """Refuses a setting `owner` does not take, for settings checked where the model's
        names were not known yet (a model loading in another process).

        Raises:
            GenerationSettingsError: naming the setting and the ones `owner` takes.
        """
        names = set(supported)
        for name in (
            *self.values,
            *([STRUCTURED] if self.structured and not self.structured_by_task else []),
        ):
            if name not in names:
                raise _not_taken(name, owner, names)


_NONE = GenerationSettings()


class GenerationRequest(NamedTuple):
    """One call's work, as every LLM kind receives it: rows, outputs per row, settings."""

    inputs: List[Dict[str, Any]]
    num_generations: int
    settings: GenerationSettings = _NONE
