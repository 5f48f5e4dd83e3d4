"""The base of rating tasks, at legacy distilabel's path: rows with an `input` and its
`generations` in, one rating per generation out."""

from __future__ import annotations

from typing import List

from distilabel_llm.tasks.base import Task

__all__ = ["PreferenceTask", "PreferenceTaskNoRationale"]


class PreferenceTask(Task):
    """A task that rates each of a row's `generations` for its `input`.

    Subclasses write `generate_prompt` and `parse_output`; the columns default to reading
    `input` and `generations` and writing `rating` and `rationale`, as legacy's did, so a
    legacy subclass keeps working.
    """

    @property
    def input_args_names(self) -> List[str]:
        return ["input", "generations"]

    @property
    def output_args_names(self) -> List[str]:
        return ["rating", "rationale"]


class PreferenceTaskNoRationale(PreferenceTask):
    """A `PreferenceTask` that writes `rating` alone, with no rationale."""

    @property
    def output_args_names(self) -> List[str]:
        return ["rating"]
