"""Argument checks shared by the public API, with errors that name the argument."""

from __future__ import annotations

from typing import Any

__all__ = ["check_positive_int"]


def check_positive_int(name: str, value: Any, allow_none: bool = False) -> None:
    """Raises ValueError naming `name` unless `value` is an int of at least 1.

    `True` is refused although `bool` is an `int`: `num_generations=True` is a mistake.

    Args:
        name: the argument's name, as the caller wrote it.
        value: what the caller passed.
        allow_none: whether `None` is also accepted.
    """
    if allow_none and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        also = " or None" if allow_none else ""
        raise ValueError(f"`{name}` must be a positive integer{also}, not {value!r}.")
