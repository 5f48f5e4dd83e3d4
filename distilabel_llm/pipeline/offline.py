"""A `Pipeline` job whose generator sends its requests as an offline batch job: the job's ids
are kept beside the checkpoint until its results are read, so that running the job again
fetches them instead of paying for a second job."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

__all__ = ["OfflineJobs", "is_offline"]


def is_offline(llm: Any) -> bool:
    """Whether `llm` sends its requests as offline batch jobs."""
    return bool(getattr(llm, "use_offline_batch_generation", False))


class OfflineJobs:
    """The ids of the generator's unfinished batch job, in `<checkpoint>.batch.json`.

    Args:
        path: the file; None keeps nothing (no checkpoint: the error carries the ids).
    """

    def __init__(self, path: Optional[Path]) -> None:
        self.path = path

    def restore(self, llm: Any) -> None:
        """Gives `llm` the ids saved by an earlier run, unless it was given some itself."""
        if self.path is None or not self.path.exists() or llm.jobs_ids is not None:
            return
        llm.jobs_ids = tuple(json.loads(self.path.read_text(encoding="utf-8"))["jobs_ids"])

    def keep(self, llm: Any) -> None:
        """Saves the ids of a job whose results were not read yet, or forgets read ones."""
        if self.path is None:
            return
        if llm.jobs_ids is None:
            self.path.unlink(missing_ok=True)
            return
        self.path.write_text(json.dumps({"jobs_ids": list(llm.jobs_ids)}), encoding="utf-8")
