"""Closing things: in a `with` block, and at interpreter exit without relying on `__del__`."""

from __future__ import annotations

import atexit
import logging
import weakref
from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:
    from types import TracebackType

    from typing_extensions import Self

__all__ = ["ClosingContext", "StoppingContext", "close_at_exit", "forget_at_exit"]

logger = logging.getLogger("distilabel_llm")


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


class StoppingContext(ClosingContext):
    """Makes `with obj:` call `obj.teardown()` on the way out, letting work in flight finish,
    or `obj.teardown(wait=False)` when leaving by an exception (Ctrl-C included), since nobody
    will read the results of that work then."""

    def teardown(self, wait: bool = True) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Same as `teardown()`."""
        self.teardown()

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.teardown(wait=exc_type is None)


# Held weakly: an object dropped by its user is not kept alive just to be closed. Each maps to
# the name of the method that closes it at exit.
_OPEN: weakref.WeakKeyDictionary[object, str] = weakref.WeakKeyDictionary()


def close_at_exit(obj: object, method: str = "close") -> None:
    """Registers `obj` so that `obj.<method>()` runs at interpreter exit, unless forgotten.

    At exit no caller is left to read results (non-daemon threads have ended), so `method`
    should stop at once rather than wait for work in flight.
    """
    _OPEN[obj] = method


def forget_at_exit(obj: object) -> None:
    """Unregisters `obj`, once it has been closed."""
    _OPEN.pop(obj, None)


@atexit.register
def _close_all() -> None:
    for obj, method in list(_OPEN.items()):
        try:
            getattr(obj, method)()
        except Exception:
            logger.exception("Closing %r at exit failed", obj)
