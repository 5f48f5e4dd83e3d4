"""Real jobs in their own process, killed (SIGKILL) or interrupted (SIGINT) mid-way, resumed."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path
from typing import Callable

import pytest
from pipeline_helpers import read_rows, wait_for_rows

pytestmark = pytest.mark.timeout(60)

ROWS = 40
StartJob = Callable[..., subprocess.Popen]


def _check_complete(path: Path, killed_at: int) -> None:
    """Every input row once, in input order, with outputs; none done before was redone."""
    rows = read_rows(path)
    assert [row["input"] for row in rows] == [f"prompt {i}" for i in range(ROWS)]
    assert all(row["error"] is None and row["generations"] for row in rows)
    runs = [row["generations"][0].rsplit("[seed=", 1)[1] for row in rows]
    assert runs == ["1]"] * killed_at + ["2]"] * (ROWS - killed_at)


def test_sigkill_mid_job_then_resume(tmp_path: Path, fake_job: StartJob) -> None:
    checkpoint = tmp_path / "out.jsonl"
    job = fake_job(checkpoint, ROWS, "1", 0.05)
    wait_for_rows(checkpoint, 6, job)
    job.send_signal(signal.SIGKILL)
    assert job.wait(timeout=10) == -signal.SIGKILL
    killed_at = len(read_rows(checkpoint))
    assert 6 <= killed_at < ROWS

    resumed = fake_job(checkpoint, ROWS, "2", 0.0)
    output, _ = resumed.communicate(timeout=30)
    assert resumed.returncode == 0, output
    _check_complete(checkpoint, killed_at)


def test_sigint_stops_cleanly_after_saving(tmp_path: Path, fake_job: StartJob) -> None:
    checkpoint = tmp_path / "out.jsonl"
    job = fake_job(checkpoint, ROWS, "1", 0.05)
    wait_for_rows(checkpoint, 4, job)
    job.send_signal(signal.SIGINT)
    output, _ = job.communicate(timeout=10)
    assert job.returncode == 130, output
    saved = len(read_rows(checkpoint))
    assert f"interrupted with {saved} rows saved" in output
    assert checkpoint.read_bytes().endswith(b"\n")  # stopped between rows, not mid-line

    resumed = fake_job(checkpoint, ROWS, "2", 0.0)
    output, _ = resumed.communicate(timeout=30)
    assert resumed.returncode == 0, output
    _check_complete(checkpoint, saved)
