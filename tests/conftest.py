"""Fixtures shared by every test folder."""

from __future__ import annotations

import importlib.util
import os
from typing import Any

import pytest

_KIT_PACKAGES = ("tokenizers", "transformers", "torch", "gguf")


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
