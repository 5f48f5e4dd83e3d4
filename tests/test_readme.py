"""Every Python snippet of the README runs as written, each in a fresh interpreter.

They use the kit's tiny models; the OpenAI ones reach our fault server on 127.0.0.1 through
`OPENAI_BASE_URL`, as a user's would reach OpenAI or a local server.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator, List, Tuple

import pytest

ROOT = Path(__file__).resolve().parents[1]
_MISSING = [
    name
    for name in (
        "llama_cpp",
        "transformers",
        "torch",
        "tokenizers",
        "gguf",
        "openai",
        "ray",
        "pydantic",
        "httpx",
    )
    if importlib.util.find_spec(name) is None
]


def _snippets() -> List[Tuple[str, str]]:
    """(the heading above it, code) of each ```python block, in order."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    snippets = []
    heading = "top"
    for match in re.finditer(r"^(#+ [^\n]*)$|^```python\n(.*?)^```", text, re.M | re.S):
        if match.group(1):
            heading = match.group(1).lstrip("# ").strip()
        else:
            snippets.append((heading, match.group(2)))
    return snippets


SNIPPETS = _snippets()


@pytest.fixture(scope="module")
def openai_server() -> Iterator[Any]:
    backends = str(ROOT / "tests" / "backends")
    if backends not in sys.path:  # where the backend tests' own helpers live
        sys.path.insert(0, backends)
    fault_server = importlib.import_module("fault_server")
    with fault_server.FaultServer(models=["gpt-4o-mini", "my-model"]) as server:
        yield server


def test_the_readme_has_snippets() -> None:
    assert len(SNIPPETS) >= 6


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.skipif(bool(_MISSING), reason=f"the README uses every extra; missing {_MISSING}")
@pytest.mark.parametrize(
    ("heading", "code"), SNIPPETS, ids=[f"{i}-{h[:30]}" for i, (h, _) in enumerate(SNIPPETS)]
)
def test_snippet_runs_as_written(
    heading: str, code: str, tmp_path: Path, openai_server: Any
) -> None:
    script = tmp_path / "snippet.py"
    script.write_text(code, encoding="utf-8")
    env = {
        **os.environ,
        "OPENAI_API_KEY": "test-key",
        "OPENAI_BASE_URL": openai_server.url,
        "RAY_ADDRESS": "",  # a local Ray of its own, not the tests' cluster
    }
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert done.returncode == 0, f"{heading}:\n{done.stdout}\n{done.stderr}"
