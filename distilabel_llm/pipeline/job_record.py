"""`JobRecord`: the settings a checkpointed job runs with, kept beside its checkpoint.

A checkpoint holds rows; resuming it with other settings would mix two jobs in one file without
a word. So `<checkpoint>.job.json` records the job's `num_generations` and generation settings,
and the models its rows came from; a run that resumes the checkpoint with different ones fails
with an error that names what changed, before it writes a row.

The settings are checked when the job starts; the models when its first rows are written, since
a model's name is known once it has loaded, and the pipeline never waits for a load to begin.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Set

from distilabel_llm.errors import CheckpointError

__all__ = ["JobRecord"]

_ROLES = {"generator": "generation_model", "labeller": "labelling_model"}


class JobRecord:
    """The record of one checkpoint's job.

    Args:
        checkpoint: the checkpoint's path; the record is `<checkpoint>.job.json`.
    """

    def __init__(self, checkpoint: Path) -> None:
        self.checkpoint = checkpoint
        self.path = checkpoint.with_name(f"{checkpoint.name}.job.json")
        self._settings: Dict[str, Any] = {}
        self._models: Dict[str, Set[str]] = {role: set() for role in _ROLES}
        self._resumed = False

    def start(self, settings: Mapping[str, Any], done: List[Dict[str, Any]]) -> None:
        """Checks `settings` against the record, when the job resumes rows (`done`), and
        records them.

        Raises:
            CheckpointError: naming each setting that differs from the recorded job's.
        """
        recorded = self._load() if done else None
        self._resumed = bool(done)
        if recorded is not None:
            changed = [
                f"{name} was {_json(recorded['settings'][name])}, now {_json(value)}"
                for name, value in settings.items()
                if name in recorded["settings"]
                and _json(recorded["settings"][name]) != _json(value)
            ]
            if changed:
                raise CheckpointError(
                    f"Checkpoint {self.checkpoint} was written by a job with other settings: "
                    f"{'; '.join(changed)}. Resume it with the same settings, or give this job "
                    "another checkpoint path (or delete it)."
                )
            for role in _ROLES:
                self._models[role].update(recorded["models"].get(role, []))
        for role, column in _ROLES.items():  # older checkpoints have no record: their rows tell
            self._models[role].update(_models(done, column))
        self._settings = dict(settings)
        self._save()

    def check_rows(self, rows: List[Dict[str, Any]]) -> None:
        """Checks that a resumed job's new rows come from the recorded models, and records
        the models of a new job's rows.

        Raises:
            CheckpointError: naming the models that changed.
        """
        grew = False
        for role, column in _ROLES.items():
            new = _models(rows, column) - self._models[role]
            if not new:
                continue
            if self._resumed and self._models[role]:
                raise CheckpointError(
                    f"Checkpoint {self.checkpoint} was written with the {role} "
                    f"{_json(sorted(self._models[role]))}, but this job's {role} is "
                    f"{_json(sorted(new))}. Resume it with the same models, or give this job "
                    "another checkpoint path (or delete it)."
                )
            self._models[role].update(new)
            grew = True
        if grew:
            self._save()

    def _load(self) -> Optional[Dict[str, Any]]:
        try:
            record = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None  # none yet (an older checkpoint), or unreadable: the rows still tell
        if not isinstance(record, dict) or not isinstance(record.get("settings"), dict):
            return None
        record.setdefault("models", {})
        return record

    def _save(self) -> None:
        models = {role: sorted(names) for role, names in self._models.items()}
        record = {"settings": self._settings, "models": models}
        temporary = self.path.with_name(f".{self.path.name}.tmp")
        temporary.write_text(json.dumps(record, indent=2, sort_keys=True, default=str) + "\n")
        os.replace(temporary, self.path)


def _models(rows: List[Dict[str, Any]], column: str) -> Set[str]:
    found: Set[str] = set()
    for row in rows:
        value = row.get(column)
        for name in value if isinstance(value, list) else [value]:
            if isinstance(name, str):
                found.add(name)
    return found


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)
