"""Helpers shared by the pipeline tests: a parseable rating task and checkpoint polling."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Dict, List

import pytest

from distilabel_llm.tasks import Prompt, Task


@dataclass
class LengthRatingTask(Task):
    """Rates generations by the length of the answer text: parseable from any FakeLLM output."""

    def generate_prompt(self, input: str, generations: List[str], **_: Any) -> Prompt:
        return Prompt(system_prompt="", formatted_prompt=f"{input}: {generations}")

    def parse_output(self, output: str) -> Dict[str, Any]:
        return {"rating": [float(len(output))], "rationale": output}

    @property
    def input_args_names(self) -> List[str]:
        return ["input", "generations"]

    @property
    def output_args_names(self) -> List[str]:
        return ["rating", "rationale"]


def read_rows(path: Path) -> List[Dict[str, Any]]:
    """The complete JSON lines of a JSONL file."""
    if not path.exists():
        return []
    lines = path.read_bytes().split(b"\n")[:-1]  # the part after the last newline is torn
    return [json.loads(line) for line in lines if line.strip()]


def wait_for_rows(path: Path, count: int, process: subprocess.Popen, timeout: float = 30) -> int:
    """Waits until `path` holds at least `count` complete rows; returns how many it holds.

    Fails at once if `process` exits first, so a broken job never turns into a timeout.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = len(read_rows(path))
        if rows >= count:
            return rows
        if process.poll() is not None:
            output = process.stdout.read() if process.stdout else ""
            pytest.fail(f"job exited with {process.returncode} before {count} rows: {output}")
        time.sleep(0.005)
    pytest.fail(f"{path} did not reach {count} rows in {timeout}s")


def fault_server_module() -> ModuleType:
    """The backends tests' OpenAI-compatible server (a real HTTP server on 127.0.0.1)."""
    backends = str(Path(__file__).parents[1] / "backends")
    if backends not in sys.path:  # as when the backends tests were collected first
        sys.path.append(backends)
    return importlib.import_module("fault_server")
