"""Fixtures for the backend tests: the kit's tiny models, loaded once per session."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence, Tuple

import pytest

_KIT_PACKAGES = ("tokenizers", "transformers", "torch", "gguf")

RunWithout = Callable[[Sequence[str], str], subprocess.CompletedProcess]


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The kit's models, built in a session temp dir (or `$DISTILABEL_LLM_CACHE` if set)."""
    missing = [name for name in _KIT_PACKAGES if importlib.util.find_spec(name) is None]
    if missing:
        pytest.skip(
            f"the tiny-model kit needs {', '.join(missing)}: pip install 'distilabel_llm[kit]'"
        )
    from distilabel_llm.testing import ensure_tiny_models

    if os.environ.get("DISTILABEL_LLM_CACHE"):
        return ensure_tiny_models()
    return ensure_tiny_models(tmp_path_factory.mktemp("tiny-models"))


@pytest.fixture(scope="session")
def hf_model_and_tokenizer(tiny_models: Any) -> Tuple[Any, Any]:
    """The tiny model and tokenizer loaded with transformers, shared by the session."""
    transformers = pytest.importorskip("transformers")
    model = transformers.AutoModelForCausalLM.from_pretrained(tiny_models.hf_path)
    tokenizer = transformers.AutoTokenizer.from_pretrained(tiny_models.hf_path)
    return model.eval(), tokenizer


@pytest.fixture(scope="session")
def llama_model(tiny_models: Any) -> Iterator[Any]:
    """The tiny GGUF model loaded with llama.cpp, shared by the session."""
    llama_cpp = pytest.importorskip("llama_cpp", reason="the `llama-cpp` extra is not installed")
    model = llama_cpp.Llama(
        model_path=str(tiny_models.gguf_path), n_ctx=1024, n_threads=2, verbose=False
    )
    yield model
    model.close()


@pytest.fixture
def run_without() -> RunWithout:
    """Runs Python `code` in a fresh interpreter in which `modules` cannot be imported."""

    def run(modules: Sequence[str], code: str) -> subprocess.CompletedProcess:
        block = "".join(f"sys.modules[{name!r}] = None\n" for name in modules)
        script = f"import sys\n{block}{textwrap.dedent(code)}"
        return subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=Path(__file__).resolve().parents[2],
        )

    return run
