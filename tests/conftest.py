"""Fixtures shared by every test folder."""

from __future__ import annotations

import importlib.util
import os
from typing import Any, Callable, Iterator, List, Optional

import pytest

from distilabel_llm import TextGenerationTask
from distilabel_llm.testing import FakeLLM

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


@pytest.fixture
def task() -> TextGenerationTask:
    return TextGenerationTask(system_prompt="sys")


@pytest.fixture
def make_llm() -> Iterator[Callable[..., FakeLLM]]:
    """Builds `FakeLLM`s (TextGenerationTask by default) and closes them after the test."""
    made: List[FakeLLM] = []

    def make(task: Optional[Any] = None, **kwargs: Any) -> FakeLLM:
        llm = FakeLLM(task if task is not None else TextGenerationTask(), **kwargs)
        made.append(llm)
        return llm

    yield make
    for llm in made:
        llm.close()
