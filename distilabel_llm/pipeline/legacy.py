"""What scripts written for legacy distilabel 0.x pass to a pipeline, mapped onto ours.

`checkpoint_path` turns legacy's checkpoint strategy object into our checkpoint file; `refuse`
explains the arguments that have no counterpart here. Legacy's `pipeline(...)` factory is in
`pipeline.factory`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict

__all__ = ["checkpoint_path", "refuse"]

# Legacy `generate` arguments with no counterpart, and what to do instead.
_NO_COUNTERPART = {
    "enable_checkpoints": "pass `checkpoint=` (a JSONL file) to checkpoint, or leave it out",
    "save_frequency": "every finished batch is saved at once; nothing to set",
}

# The checkpoint file a legacy checkpoint strategy's folder receives.
CHECKPOINT_FILE = "checkpoint.jsonl"


def checkpoint_path(strategy: Any) -> Path:
    """The checkpoint file for legacy's `checkpoint_strategy` (a `DatasetCheckpoint`): a JSONL
    file in its `path` folder, saved after every batch (its `save_frequency` is not needed).

    Raises:
        ValueError: for a strategy that does not save to disk.
    """
    path = getattr(strategy, "path", None)
    kind = getattr(strategy, "strategy", "disk")
    if path is None or kind != "disk":
        raise ValueError(
            f"`checkpoint_strategy` {strategy!r} does not save to a folder on disk; only "
            "`DatasetCheckpoint(path=..., strategy='disk')` maps onto a checkpoint here. Pass "
            "`checkpoint='out.jsonl'` instead, and push the result where you like when done."
        )
    return Path(os.fspath(path)) / CHECKPOINT_FILE


def refuse(arguments: Dict[str, Any]) -> None:
    """Raises a `TypeError` naming each argument and what to do instead."""
    if not arguments:
        return
    reasons = "; ".join(
        f"`{name}` ({_NO_COUNTERPART[name]})"
        if name in _NO_COUNTERPART
        else f"`{name}` (not an argument of Pipeline.generate)"
        for name in arguments
    )
    raise TypeError(
        f"Pipeline.generate does not take {reasons}. See the README's 'Coming from "
        "distilabel 0.x' section."
    )
