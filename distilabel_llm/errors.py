"""Exceptions raised by distilabel_llm, each saying what went wrong and what to do."""

from __future__ import annotations


class DistilabelLLMError(Exception):
    """Base class of every error this library raises on its own account."""


class OutputParsingError(DistilabelLLMError, ValueError):
    """A task could not parse the text a model returned."""


class MissingExtraError(DistilabelLLMError, ImportError):
    """An optional backend was used without its extra installed."""

    def __init__(self, package: str, extra: str) -> None:
        super().__init__(
            f"`{package}` is not installed, and this backend needs it. "
            f"Run: pip install 'distilabel_llm[{extra}]'"
        )
        self.package = package
        self.extra = extra
