"""A call's generation settings as one value, checked once where the call enters the library.

Users give settings as a dict (`generation_kwargs`); the library checks it once against the
catalogue (`catalogue.check_generation_kwargs`), where the call enters it, into a
`GenerationSettings` value that travels as data to wherever the model runs (a `ProcessLLM`
child, a Ray actor, every member of a pool) and is never checked again on the way.

Beside the user's settings the value carries, as fields of their own, what the library adds:
the structured-output spec with the pydantic class its outputs become, and each row's first
generation slot. A pool that splits a row's generations over its members gives each member its
slots, so that slot `k` is sampled with seed `seed + k` whoever makes it, and replicas never
repeat each other's samples.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import (
    Any,
    Dict,
    ItemsView,
    Iterable,
    Iterator,
    KeysView,
    List,
    Mapping,
    NamedTuple,
    Optional,
    Sequence,
    Tuple,
    Union,
)

from distilabel_llm.errors import GenerationSettingsError
from distilabel_llm.llm.core.catalogue import OFFSET, check_generation_kwargs, setting_not_taken
from distilabel_llm.llm.core.structured import STRUCTURED

__all__ = ["NO_SETTINGS", "GenerationRequest", "GenerationSettings"]


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
            return NO_SETTINGS
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

    # The dict's own views: `dict(settings)` and `settings.get` stay at C speed.

    def keys(self) -> KeysView[str]:
        return self.values.keys()

    def items(self) -> ItemsView[str, Any]:
        return self.values.items()

    def get(self, name: str, default: Any = None) -> Any:
        return self.values.get(name, default)

    def __contains__(self, name: object) -> bool:
        return name in self.values

    def __reduce__(self) -> Any:  # crosses to children and actors without the class
        if self.is_empty:
            return _no_settings, ()  # most calls: one shared value, rebuilt for free
        return (
            type(self),
            (self.values, self.structured, None, self.structured_by_task, self.offsets),
        )

    @property
    def is_empty(self) -> bool:
        """Whether these settings set nothing: no value, no structured output, slot 0."""
        return not self.values and self.structured is None and self.offsets == 0

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
        if defaults.is_empty:
            return self
        if self.is_empty:
            return defaults
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
                raise setting_not_taken(name, owner, names)


NO_SETTINGS = GenerationSettings()
"""The settings of a call that sets none: one shared value."""


def _no_settings() -> GenerationSettings:
    return NO_SETTINGS


class GenerationRequest(NamedTuple):
    """One call's work, as every LLM kind receives it: rows, outputs per row, settings."""

    inputs: List[Dict[str, Any]]
    num_generations: int
    settings: GenerationSettings = NO_SETTINGS
