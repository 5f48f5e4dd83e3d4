"""Closing things: in a `with` block, and at interpreter exit without relying on `__del__`."""

from __future__ import annotations

import atexit
import logging
import weakref
from typing import TYPE_CHECKING, Optional, Protocol

if TYPE_CHECKING:
    from types import TracebackType

    from typing_extensions import Self

__all__ = ["ClosingContext", "close_at_exit", "forget_at_exit"]

logger = logging.getLogger("distilabel_llm")


class _Closable(Protocol):
    def close(self) -> None: ...


class ClosingContext:
    """Makes `with obj:` call `obj.close()` on the way out."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()


# Held weakly: an object dropped by its user is not kept alive just to be closed.
_OPEN: weakref.WeakSet[_Closable] = weakref.WeakSet()


def close_at_exit(obj: _Closable) -> None:
    """Registers `obj` to be closed at interpreter exit unless it is closed before."""
    _OPEN.add(obj)


def forget_at_exit(obj: _Closable) -> None:
    """Unregisters `obj`, once it has been closed."""
    _OPEN.discard(obj)


@atexit.register
def _close_all() -> None:
    for obj in list(_OPEN):
        try:
            obj.close()
        except Exception:
            logger.exception("Closing %r at exit failed", obj)
