"""Fixtures for the pipeline tests: processes that are always reaped, and FakeLLMs closed."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Iterator, List

import pytest

HERE = Path(__file__).parent
FAKE_JOB = HERE / "fake_job.py"


@pytest.fixture
def spawn() -> Iterator[Callable[..., subprocess.Popen]]:
    """Starts commands in their own process group; kills every group after the test."""
    started: List[subprocess.Popen] = []

    def start(args: List[str], **kwargs: Any) -> subprocess.Popen:
        process = subprocess.Popen(
            args,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
            **kwargs,
        )
        started.append(process)
        return process

    yield start
    for process in started:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


@pytest.fixture
def fake_job(spawn: Callable[..., subprocess.Popen]) -> Callable[..., subprocess.Popen]:
    """Starts `fake_job.py` (a checkpointed FakeLLM job) as its own process."""

    def start(
        checkpoint: Path, rows: int, model_name: str, seconds_per_row: float, batch_size: int = 2
    ) -> subprocess.Popen:
        args = [str(FAKE_JOB), str(checkpoint), str(rows), model_name, str(seconds_per_row)]
        return spawn([sys.executable, *args, str(batch_size)])

    return start
