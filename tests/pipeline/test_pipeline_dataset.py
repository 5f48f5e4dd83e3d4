"""Reading input rows: lists, JSONL files and their errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from distilabel_llm.pipeline import DatasetError, load_rows

pytestmark = pytest.mark.timeout(30)


def test_list_rows_are_copied() -> None:
    rows = [{"input": "a"}, {"input": "b", "extra": 1}]
    loaded = load_rows(rows)
    assert loaded == rows
    loaded[0]["input"] = "changed"
    assert rows[0]["input"] == "a"


def test_jsonl_rows_skip_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text('{"input": "a"}\n\n{"input": "b"}\n', encoding="utf-8")
    assert load_rows(path) == [{"input": "a"}, {"input": "b"}]
    assert load_rows(str(path)) == [{"input": "a"}, {"input": "b"}]


def test_jsonl_lines_end_at_newlines_only(tmp_path: Path) -> None:
    # Raw U+2028, U+2029 and U+0085 are valid inside JSON strings (json.dumps writes them with
    # ensure_ascii=False), though `str.splitlines` would break a line there; Windows' "\r\n"
    # ends a line like "\n".
    texts = ["line\u2028separator", "para\u2029graph", "next\x85line"]
    path = tmp_path / "in.jsonl"
    lines = [json.dumps({"input": text}, ensure_ascii=False) for text in texts]
    path.write_bytes("\r\n".join(lines).encode("utf-8") + b"\r\n")
    assert load_rows(path) == [{"input": text} for text in texts]


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"nope\.jsonl' does not exist"):
        load_rows(tmp_path / "nope.jsonl")


def test_directory_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="is a directory"):
        load_rows(tmp_path)


def test_bad_json_line_gives_its_number(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text('{"input": "a"}\n{"input": "b"}\n{"input": oops}\n', encoding="utf-8")
    with pytest.raises(DatasetError, match="line 3 is not valid JSON"):
        load_rows(path)


def test_an_unterminated_string_reads_plainly(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text('{"input": "a}\n', encoding="utf-8")
    with pytest.raises(DatasetError) as raised:
        load_rows(path)
    assert "(column 11: Unterminated string starting at); each line" in str(raised.value)
    assert "at at" not in str(raised.value)


def test_non_object_line_gives_its_number(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text(json.dumps({"input": "a"}) + "\n[1, 2]\n", encoding="utf-8")
    with pytest.raises(DatasetError, match="line 2 is a JSON list, not an object"):
        load_rows(path)


def test_non_dict_rows_are_rejected() -> None:
    with pytest.raises(DatasetError, match="Row 1 is a str"):
        load_rows([{"input": "a"}, "b"])
    with pytest.raises(DatasetError, match="is a dict"):
        load_rows({"input": ["a"]})
    with pytest.raises(DatasetError, match="Cannot read rows from a int"):
        load_rows(3)


def test_hf_dataset_round_trip() -> None:
    datasets = pytest.importorskip("datasets", reason="`datasets` is an optional extra")
    from distilabel_llm.pipeline import Pipeline
    from distilabel_llm.tasks import TextGenerationTask
    from distilabel_llm.testing import FakeLLM

    dataset = datasets.Dataset.from_list([{"input": "a"}, {"input": "b"}])
    with FakeLLM(TextGenerationTask()) as llm:
        out = Pipeline(generator=llm).generate(dataset, display_progress_bar=False)
    assert isinstance(out, datasets.Dataset)
    assert out["generations"] == [["fake #0: a"], ["fake #0: b"]]
