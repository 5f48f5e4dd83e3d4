"""Reading a pipeline's input rows: a list of dicts, a JSONL file or a `datasets.Dataset`."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Dict, List, Sequence, Union

from distilabel_llm.errors import DatasetError

__all__ = ["DatasetError", "DatasetLike", "is_hf_dataset", "load_rows", "read_jsonl", "to_hf"]

DatasetLike = Union[Sequence[Dict[str, Any]], str, "os.PathLike[str]", Any]
"""What `Pipeline.generate` accepts: rows, a JSONL path, or a `datasets.Dataset`."""


def is_hf_dataset(dataset: Any) -> bool:
    """Whether `dataset` is a Hugging Face `datasets.Dataset`, without importing `datasets`."""
    cls = type(dataset)
    return cls.__name__ == "Dataset" and cls.__module__.split(".")[0] == "datasets"


def load_rows(dataset: DatasetLike) -> List[Dict[str, Any]]:
    """Returns the rows of `dataset` as new dicts (the caller's rows are never modified).

    Args:
        dataset: a sequence of dicts, the path of a JSONL file (one JSON object per line), or
            a `datasets.Dataset`.

    Raises:
        DatasetError: naming the file, line or row that cannot be used, and how to fix it.
    """
    if isinstance(dataset, (str, os.PathLike)):
        return read_jsonl(dataset)
    if is_hf_dataset(dataset):
        return [dict(row) for row in dataset]
    if isinstance(dataset, dict):
        raise DatasetError(
            "The dataset is a dict; pass a list of dicts (one per row), a JSONL path or a "
            "`datasets.Dataset`."
        )
    try:
        rows = list(dataset)
    except TypeError:
        raise DatasetError(
            f"Cannot read rows from a {type(dataset).__name__}; pass a list of dicts, a JSONL "
            "path or a `datasets.Dataset`."
        ) from None
    for position, row in enumerate(rows):
        if not isinstance(row, dict):
            raise DatasetError(
                f"Row {position} is a {type(row).__name__}, not a dict of column values: {row!r}"
            )
    return [dict(row) for row in rows]


def read_jsonl(path: Union[str, os.PathLike[str]]) -> List[Dict[str, Any]]:
    """Reads a JSONL file of one JSON object per line; blank lines are skipped.

    Raises:
        DatasetError: when the file cannot be read, or a line is not a JSON object (the
            message gives its line number).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DatasetError(f"Input file {str(path)!r} does not exist.") from None
    except IsADirectoryError:
        raise DatasetError(f"Input {str(path)!r} is a directory; give a JSONL file.") from None
    except (OSError, UnicodeDecodeError) as error:
        raise DatasetError(f"Cannot read input file {str(path)!r}: {error}") from None
    rows: List[Dict[str, Any]] = []
    for number, line in enumerate(_jsonl_lines(text), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise DatasetError(
                f"{path} line {number} is not valid JSON (column {error.colno}: {error.msg}); "
                'each line must be one JSON object such as {"input": "..."}.'
            ) from None
        if not isinstance(row, dict):
            raise DatasetError(
                f"{path} line {number} is a JSON {type(row).__name__}, not an object; each "
                'line must be one JSON object such as {"input": "..."}.'
            )
        rows.append(row)
    return rows


def _jsonl_lines(text: str) -> List[str]:
    """The lines of a JSON Lines text: split at "\n" only, as the format defines, and not at
    every line break `str.splitlines` knows, so that a string holding a raw U+2028 or U+0085
    (valid JSON, as `json.dumps(..., ensure_ascii=False)` writes it) stays whole. A "\r"
    ending a line (Windows' "\r\n") is dropped."""
    return [line[:-1] if line.endswith("\r") else line for line in text.split("\n")]


def to_hf(rows: List[Dict[str, Any]]) -> Any:
    """Builds a `datasets.Dataset` from rows, whatever keys each row has."""
    from datasets import Dataset

    columns: Dict[str, None] = {}
    for row in rows:
        columns.update(dict.fromkeys(row))
    return Dataset.from_dict({name: [row.get(name) for row in rows] for name in columns})
