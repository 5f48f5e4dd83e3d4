"""Legacy distilabel's task names that have no counterpart here, and what to use instead.

Importing one from its legacy module raises `NotAvailableError` with this advice rather than
Python's bare "cannot import name".
"""

from __future__ import annotations

from typing import Any, Callable, Dict

from distilabel_llm.errors import NotAvailableError

__all__ = ["NOT_AVAILABLE", "module_getattr"]

_ARGILLA = (
    "legacy's Argilla export (`to_argilla_dataset`, `to_argilla_record`) is not part of "
    "distilabel_llm: a Pipeline returns plain rows (or a `datasets.Dataset`), which Argilla's "
    "own client can load"
)

_OUTPUT = (
    "a task's parsed output here is a plain dict of its `output_args_names`, a list per "
    "generation where legacy had one value: annotate it as `Dict[str, Any]`"
)

# name -> what to use instead
NOT_AVAILABLE: Dict[str, str] = {
    "RatingToArgillaMixin": _ARGILLA,
    "InstructTaskMixin": _ARGILLA,
    "TaskProtocol": _ARGILLA,
    "get_template": (
        "the prompts here are our own wording, not legacy's Jinja templates: give a task "
        "`template=` (a format string, or a function that may render a Jinja template)"
    ),
    "ChatCompletion": "use `ChatMessages` from `distilabel_llm.tasks.prompt`",
    "CritiqueTaskOutput": _OUTPUT,
    "JudgeLMOutput": _OUTPUT,
    "UltraFeedbackOutput": _OUTPUT,
    "UltraJudgeOutput": _OUTPUT,
    "Area": _OUTPUT,
}


def module_getattr(module: str) -> Callable[[str], Any]:
    """A module `__getattr__` for `module` that explains the names of `NOT_AVAILABLE`."""

    def __getattr__(name: str) -> Any:
        if name in NOT_AVAILABLE:
            raise NotAvailableError(
                f"distilabel's `{name}` has no counterpart in distilabel_llm: "
                f"{NOT_AVAILABLE[name]}. See the README's 'Coming from distilabel 0.x' section."
            )
        raise AttributeError(f"module {module!r} has no attribute {name!r}")

    return __getattr__
