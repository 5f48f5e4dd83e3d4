"""The checkpoint file: append and sync, read back, cut a torn line, refuse another job's file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List

import pytest

from distilabel_llm.pipeline import Checkpoint, CheckpointError

pytestmark = pytest.mark.timeout(10)

INPUTS = [{"input": f"q{i}"} for i in range(5)]
OUTPUTS = {"generations", "error"}


def _done(i: int) -> Dict[str, Any]:
    return {"input": f"q{i}", "generations": [f"a{i}"], "error": None}


def _write(path: Path, rows: List[Dict[str, Any]], tail: bytes = b"") -> None:
    path.write_bytes(b"".join(json.dumps(row).encode() + b"\n" for row in rows) + tail)


def test_new_file_and_parents_are_created(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "out.jsonl"
    with Checkpoint(path) as checkpoint:
        assert checkpoint.open(INPUTS, OUTPUTS) == []
        checkpoint.append([_done(0), _done(1)])
        # On disk before `append` returns: another reader sees both rows now.
        assert path.read_text().splitlines() == [json.dumps(_done(i)) for i in (0, 1)]
    with Checkpoint(path) as checkpoint:
        assert checkpoint.open(INPUTS, OUTPUTS) == [_done(0), _done(1)]


def test_torn_last_line_is_cut_before_appending(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    _write(path, [_done(0)], tail=b'{"input": "q1", "genera')
    with Checkpoint(path) as checkpoint:
        assert checkpoint.open(INPUTS, OUTPUTS) == [_done(0)]
        checkpoint.append([_done(1)])
    assert [json.loads(line) for line in path.read_text().splitlines()] == [_done(0), _done(1)]


def test_last_line_missing_only_its_newline_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    _write(path, [_done(0)], tail=json.dumps(_done(1)).encode())
    with Checkpoint(path) as checkpoint:
        assert checkpoint.open(INPUTS, OUTPUTS) == [_done(0), _done(1)]
        checkpoint.append([_done(2)])
    assert [json.loads(line) for line in path.read_text().splitlines()] == [
        _done(0),
        _done(1),
        _done(2),
    ]


def test_corrupt_middle_line_is_reported_with_its_number(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    path.write_text(json.dumps(_done(0)) + "\nnot json\n" + json.dumps(_done(2)) + "\n")
    with pytest.raises(CheckpointError, match="line 2 is not valid JSON"):
        Checkpoint(path).open(INPUTS, OUTPUTS)


def test_checkpoint_of_other_inputs_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    _write(path, [_done(0), {"input": "other", "generations": ["x"], "error": None}])
    with pytest.raises(CheckpointError, match=r"row 1 has input='other'.*another job"):
        Checkpoint(path).open(INPUTS, OUTPUTS)
    _write(path, [_done(i) for i in range(5)])
    with pytest.raises(CheckpointError, match="holds 5 rows but this job has only 2 inputs"):
        Checkpoint(path).open(INPUTS[:2], OUTPUTS)


def test_two_jobs_cannot_share_a_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    with Checkpoint(path) as first:
        first.open(INPUTS, OUTPUTS)
        with pytest.raises(CheckpointError, match="Another job is writing"):
            Checkpoint(path).open(INPUTS, OUTPUTS)
    with Checkpoint(path) as again:  # released on close
        assert again.open(INPUTS, OUTPUTS) == []


def test_append_needs_open(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="call `open` first"):
        Checkpoint(tmp_path / "out.jsonl").append([_done(0)])


def test_values_that_json_changes_still_match(tmp_path: Path) -> None:
    """NaN, tuples and non-JSON values read back differently but are the same input."""
    inputs = [{"input": "q0", "score": float("nan"), "tags": ("a", "b"), "path": tmp_path}]
    path = tmp_path / "out.jsonl"
    with Checkpoint(path) as checkpoint:
        checkpoint.open(inputs, OUTPUTS)
        checkpoint.append([{**inputs[0], "generations": ["x"], "error": None}])
    with Checkpoint(path) as checkpoint:
        assert len(checkpoint.open(inputs, OUTPUTS)) == 1
