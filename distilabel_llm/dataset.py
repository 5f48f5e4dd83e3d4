"""Legacy distilabel's `dataset.DatasetCheckpoint`, for scripts that pass it as
`Pipeline.generate(..., checkpoint_strategy=...)`.

Only the checkpoint carries over: legacy's dataset classes (Argilla export, `CustomDataset`)
are a separate product and are not here; `Pipeline.generate` returns a list of rows (or a
`datasets.Dataset` when given one).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Literal, Union

__all__ = ["DatasetCheckpoint"]


@dataclass
class DatasetCheckpoint:
    """Where a legacy job kept its checkpoint: here, the JSONL file
    `<path>/checkpoint.jsonl`, written after every batch.

    Args:
        path: the folder of the checkpoint.
        save_frequency: kept for legacy scripts; every finished batch is saved at once.
        strategy: "disk"; legacy's "hf-hub" is refused with the way to push a result instead.
        extra_kwargs: kept for legacy scripts; unused.
    """

    path: Union[str, os.PathLike[str]] = field(default_factory=lambda: Path.cwd() / "ckpt")
    save_frequency: int = -1
    strategy: Literal["disk", "hf-hub"] = "disk"
    extra_kwargs: Dict[str, Any] = field(default_factory=dict)
