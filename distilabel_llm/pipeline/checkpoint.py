"""A JSONL checkpoint: finished rows appended and synced as they finish, read back on resume.

The file only ever holds a prefix of the input, in input order: line k is input row k. A job
killed at any moment leaves at worst one torn last line, which the next run cuts off before it
appends the rows still missing. So the file that a finished job leaves holds each input row
exactly once, in input order. Rows that a later run redoes (those that failed) are put in place
by `rewrite`, which replaces the whole file atomically.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import IO, Any, Collection, Dict, List, Optional, Union

from distilabel_llm.errors import CheckpointError
from distilabel_llm.utils.lifecycle import ClosingContext

try:  # POSIX only; elsewhere two jobs on one checkpoint are not detected.
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

__all__ = ["Checkpoint", "CheckpointError", "check_checkpoint_path", "same_file"]


class Checkpoint(ClosingContext):
    """An append-only JSONL file of the rows a job has finished.

    Use `open` to lock the file and read back the rows finished by earlier runs, `redo` to name
    rows of those that the job does again, `append` to add finished rows (written, flushed and
    fsynced before it returns), then `close`.

    Args:
        path: the JSONL file; created, with its parent folders, when missing.
    """

    # A long run of redone rows is written to disk at least this often, so that a kill loses
    # little of it.
    REWRITE_EVERY_S = 60.0

    def __init__(self, path: Union[str, os.PathLike[str]]) -> None:
        self.path = Path(path)
        self._file: Optional[IO[bytes]] = None
        self._rows: List[Dict[str, Any]] = []
        self._redo: List[int] = []  # positions whose new rows `append` receives first
        self._redone = 0
        self._unsaved = False
        self._saved_at = 0.0

    def open(
        self, inputs: List[Dict[str, Any]], output_columns: Collection[str]
    ) -> List[Dict[str, Any]]:
        """Locks the file and returns the rows it holds, which are the first rows of `inputs`.

        A torn last line (the job was killed while writing it) is cut off.

        Args:
            inputs: this job's input rows.
            output_columns: the columns the job adds; the others must equal the inputs'.

        Raises:
            CheckpointError: if another job holds the file, or if it was written for other
                inputs, or a line other than the last is not JSON.
        """
        if self._file is not None:
            raise RuntimeError(f"Checkpoint {self.path} is already open.")
        check_checkpoint_path(self.path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            created = not self.path.exists()
            file = open(self.path, "a+b")  # noqa: SIM115 - kept open until `close`
        except OSError as error:
            raise CheckpointError(f"Cannot open checkpoint {str(self.path)!r}: {error}") from None
        try:
            self._lock(file)
            if created:
                _fsync_dir(self.path.parent)
            rows = self._read(file)
            _check_matches(self.path, rows, inputs, set(output_columns))
        except BaseException:
            file.close()
            raise
        self._file = file
        self._rows = list(rows)
        return rows

    def redo(self, positions: List[int]) -> None:
        """Makes the next `len(positions)` rows given to `append` replace the rows at these
        positions (in this order) rather than follow the file's last row."""
        self._redo, self._redone = list(positions), 0

    def append(self, rows: List[Dict[str, Any]]) -> None:
        """Appends `rows`, one JSON line each, and syncs them to disk before returning (rows
        that replace redone ones reach the disk by `rewrite`, at latest on `close`)."""
        if self._file is None:
            raise RuntimeError(f"Checkpoint {self.path} is not open; call `open` first.")
        rows = list(rows)
        while rows and self._redone < len(self._redo):
            self._rows[self._redo[self._redone]] = rows.pop(0)
            self._redone += 1
            self._unsaved = True
        if self._unsaved and (
            rows
            or self._redone == len(self._redo)
            or time.monotonic() - self._saved_at >= self.REWRITE_EVERY_S
        ):
            self.rewrite(self._rows)
        if not rows:
            return
        self._rows.extend(rows)
        self._file.write(_encode(rows))
        self._file.flush()
        os.fsync(self._file.fileno())

    def rewrite(self, rows: List[Dict[str, Any]]) -> None:
        """Replaces the file's content with `rows` at once: a crash leaves the old file or the
        new one, never a mix. The lock moves to the new file with it."""
        if self._file is None:
            raise RuntimeError(f"Checkpoint {self.path} is not open; call `open` first.")
        temporary = self.path.with_name(f".{self.path.name}.rewrite")
        file = open(temporary, "w+b")  # noqa: SIM115 - becomes the checkpoint's file
        try:
            self._lock(file)
            file.write(_encode(rows))
            file.flush()
            os.fsync(file.fileno())
            os.replace(temporary, self.path)
        except BaseException:
            file.close()
            temporary.unlink(missing_ok=True)
            raise
        _fsync_dir(self.path.parent)
        self._file.close()
        self._file = file
        self._rows = list(rows)
        self._unsaved = False
        self._saved_at = time.monotonic()

    def close(self) -> None:
        """Saves the redone rows not yet on disk, then releases the file (and its lock).
        Idempotent."""
        if self._file is not None and self._unsaved:
            self.rewrite(self._rows)
        file, self._file = self._file, None
        if file is not None:
            file.close()

    def _lock(self, file: IO[bytes]) -> None:
        if fcntl is None:  # pragma: no cover
            return
        try:
            fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise CheckpointError(
                f"Another job is writing checkpoint {str(self.path)!r}; wait for it to finish "
                "or give this job another checkpoint path."
            ) from None

    def _read(self, file: IO[bytes]) -> List[Dict[str, Any]]:
        file.seek(0)
        data = file.read()
        lines = data.split(b"\n")
        # After the last newline: b"" for a clean file, else a line the job was killed writing.
        tail = lines.pop()
        rows: List[Dict[str, Any]] = []
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise CheckpointError(
                    f"Checkpoint {self.path} line {number} is not valid JSON ({error.msg}); "
                    "the file was changed by hand. Fix or delete that line to resume."
                ) from None
            if not isinstance(row, dict):
                raise CheckpointError(
                    f"Checkpoint {self.path} line {number} is not a JSON object; fix or delete "
                    "that line to resume."
                )
            rows.append(row)
        if tail:
            torn = _parse_or_none(tail)
            if torn is None:
                file.truncate(len(data) - len(tail))
            else:  # complete but for its newline
                rows.append(torn)
                file.write(b"\n")
            file.flush()
            os.fsync(file.fileno())
        return rows


def check_checkpoint_path(
    path: Union[str, os.PathLike[str]], dataset: Optional[Any] = None
) -> None:
    """Raises `CheckpointError` if `path` exists but is not a regular file, or is the file
    `dataset` (a JSONL path) is read from.

    A job appends rows to its checkpoint and reads them back to resume; a device such as
    `/dev/full` would be read forever, a directory or a pipe cannot be; and its input file
    would be read back as rows already done, so that nothing new is written.
    """
    path = Path(path)
    if path.exists() and not path.is_file():
        raise CheckpointError(
            f"Checkpoint {str(path)!r} is not a regular file (a device, a directory or a "
            "pipe): a job appends rows to it and reads them back to resume. Give the path of "
            "a file."
        )
    if isinstance(dataset, (str, os.PathLike)) and same_file(dataset, path):
        raise CheckpointError(
            f"Checkpoint {str(path)!r} is the input file: the job would read its input rows "
            "back as finished ones and write nothing new. Give the checkpoint (the output) "
            "another path."
        )


def same_file(a: Union[str, os.PathLike[str]], b: Union[str, os.PathLike[str]]) -> bool:
    """Whether two paths name one file, through a symbolic or hard link too."""
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet): they differ
        return False


def _encode(rows: List[Dict[str, Any]]) -> bytes:
    lines = [json.dumps(row, ensure_ascii=False, default=str) + "\n" for row in rows]
    return "".join(lines).encode("utf-8")


def _parse_or_none(line: bytes) -> Optional[Dict[str, Any]]:
    try:
        row = json.loads(line)
    except ValueError:
        return None
    return row if isinstance(row, dict) else None


def _same(saved: Any, value: Any) -> bool:
    """Whether `value` is what reads back as `saved` (NaN and tuples included)."""
    return json.dumps(saved, sort_keys=True, default=str) == json.dumps(
        value, sort_keys=True, default=str
    )


def _check_matches(
    path: Path,
    rows: List[Dict[str, Any]],
    inputs: List[Dict[str, Any]],
    output_columns: Collection[str],
) -> None:
    if len(rows) > len(inputs):
        raise CheckpointError(
            f"Checkpoint {path} holds {len(rows)} rows but this job has only {len(inputs)} "
            "inputs, so it belongs to another job. Delete it or choose another checkpoint path."
        )
    for position, (done, row) in enumerate(zip(rows, inputs)):
        for column, value in row.items():
            if column in output_columns:
                continue
            if column not in done or not _same(done[column], value):
                raise CheckpointError(
                    f"Checkpoint {path} row {position} has {column}={done.get(column)!r} but "
                    f"this job's input has {column}={value!r}, so the checkpoint belongs to "
                    "another job. Delete it or choose another checkpoint path."
                )


def _fsync_dir(directory: Path) -> None:
    """Makes a new file's directory entry durable, so a crash cannot lose the whole file."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - not possible on every platform
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)
