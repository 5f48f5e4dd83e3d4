"""An LLM that writes down when its model loads and unloads, importable by child processes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from distilabel_llm.testing import FakeLLM


class RecordingLLM(FakeLLM):
    """A `FakeLLM` appending `load` and `unload` to the file at `log`."""

    def __init__(self, task: Any, log: str) -> None:
        super().__init__(task)
        self._log = Path(log)

    def _load(self) -> None:
        with self._log.open("a") as log:
            log.write("load\n")

    def _unload(self) -> None:
        with self._log.open("a") as log:
            log.write("unload\n")
