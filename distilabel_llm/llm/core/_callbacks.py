"""Calling a user's progress callback: one convention, and a failing display never fails work."""

from __future__ import annotations

import logging
import threading
import weakref
from typing import Any, Callable

__all__ = ["report_progress"]

logger = logging.getLogger("distilabel_llm")


def report_progress(callback: Callable[..., None], *args: Any, **kwargs: Any) -> None:
    """Calls a progress callback; a failing progress display never fails generation.

    Every LLM kind calls `progress_callback_func(advance=k)`, as legacy distilabel did. A
    callback that raises is reported once, with its traceback, not at every call.
    """
    try:
        callback(*args, **kwargs)
    except Exception:
        key = getattr(callback, "__func__", callback)  # a bound method: its function
        with _FAILED_CALLBACKS_LOCK:
            try:
                first = key not in _FAILED_CALLBACKS
                _FAILED_CALLBACKS.add(key)
            except TypeError:  # not weakly referenceable: report it every time
                first = True
        if first:
            logger.exception(
                "The progress callback %r raised when called with %s; generation goes on, and "
                "its later errors are not shown. Progress callbacks are called as "
                "`callback(advance=k)`.",
                callback,
                ", ".join([*map(repr, args), *(f"{k}={v!r}" for k, v in kwargs.items())]),
            )


# Progress callbacks that raised already: each is reported once. Held weakly, so that a new
# callback is never taken for an old one that was freed.
_FAILED_CALLBACKS: weakref.WeakSet[Any] = weakref.WeakSet()
_FAILED_CALLBACKS_LOCK = threading.Lock()
