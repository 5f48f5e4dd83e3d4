"""A `Pipeline` job whose generator sends its requests as an offline batch job: the job's ids
are kept beside the checkpoint until its results are read, so that running the job again
fetches them instead of paying for a second job."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Dict, List, Optional

from distilabel_llm.errors import OfflineBatchNotFinishedError

__all__ = ["OfflineJobs"]


class OfflineJobs:
    """The ids of the generator's unfinished batch job, in `<checkpoint>.batch.json`, with a
    fingerprint of the rows it was sent for.

    Args:
        path: the file; None keeps nothing (no checkpoint: the error carries the ids).
        rows: the rows this run sends in one job.
    """

    def __init__(self, path: Optional[Path], rows: List[Dict[str, Any]]) -> None:
        self.path = path
        self._rows = _fingerprint(rows)

    def restore(self, llm: Any) -> None:
        """Gives `llm` the ids saved by an earlier run, unless it was given some itself.

        Raises:
            ValueError: if the saved job was sent for other rows: its results would land on
                the wrong ones.
        """
        if self.path is None or not self.path.exists() or llm.jobs_ids is not None:
            return
        saved = json.loads(self.path.read_text(encoding="utf-8"))
        if saved.get("rows") != self._rows:
            raise ValueError(
                f"The offline batch job {saved['jobs_ids']} saved in {self.path} was sent for "
                "other rows than this run's. Run the job with the rows it was sent for to "
                "fetch its results, or delete that file to send a new job."
            )
        llm.jobs_ids = tuple(saved["jobs_ids"])

    def advise(self, pending: OfflineBatchNotFinishedError) -> None:
        """Says in `pending`'s message where this run keeps the job's ids, if anywhere."""
        if self.path is not None:
            pending.args = (
                f"{pending} This Pipeline keeps them in {self.path}: run the job again with "
                "the same checkpoint to fetch the results (delete that file to send a new job "
                "instead).",
            )

    def keep(self, llm: Any) -> None:
        """Saves the ids of a job whose results were not read yet, or forgets read ones."""
        if self.path is None:
            return
        if llm.jobs_ids is None:
            self.path.unlink(missing_ok=True)
            return
        saved = {"jobs_ids": list(llm.jobs_ids), "rows": self._rows}
        self.path.write_text(json.dumps(saved), encoding="utf-8")


def _fingerprint(rows: List[Dict[str, Any]]) -> str:
    text = json.dumps(rows, sort_keys=True, default=repr, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
