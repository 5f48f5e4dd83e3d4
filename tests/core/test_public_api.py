"""Import paths are part of the contract, and the core never imports a heavy backend."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "transformers", "llama_cpp", "openai", "ray")


def test_top_level_exports() -> None:
    import distilabel_llm
    from distilabel_llm import (
        LLM,
        LLMOutput,
        Prompt,
        Task,
        TextGenerationTask,
        __version__,
        when_all_complete,
    )
    from distilabel_llm.llm.base import LLM as BaseLLM
    from distilabel_llm.utils.futures import when_all_complete as futures_when_all_complete

    assert LLM is BaseLLM
    assert when_all_complete is futures_when_all_complete
    assert set(LLMOutput.__annotations__) >= {
        "model_name",
        "prompt_used",
        "raw_output",
        "parsed_output",
    }
    assert isinstance(Prompt("s", "p"), Prompt)
    assert issubclass(TextGenerationTask, Task)
    assert isinstance(__version__, str) and __version__.count(".") >= 2
    assert set(distilabel_llm.__all__) >= {
        "LLM",
        "LLMOutput",
        "Prompt",
        "Task",
        "TextGenerationTask",
        "when_all_complete",
        "__version__",
    }


def test_llm_package_exports() -> None:
    from distilabel_llm import llm

    assert llm.LLM.__name__ == "LLM"
    assert llm.LLMOutput.__name__ == "LLMOutput"
    assert {"LLM", "LLMOutput", "ProcessLLM", "RayLLM", "RemoteLLM", "LLMPool"} <= set(llm.__all__)
    assert issubclass(llm.ProcessLLM, llm.RemoteLLM) and issubclass(llm.RayLLM, llm.RemoteLLM)
    with pytest.raises(AttributeError, match="no attribute 'NoSuchLLM'"):
        llm.NoSuchLLM  # noqa: B018


def test_distilabel_classes_not_here_say_what_to_use_and_where_to_read() -> None:
    from distilabel_llm.errors import NotAvailableError
    from distilabel_llm.llm._not_available import NOT_AVAILABLE

    with pytest.raises(NotAvailableError, match=r"use `VLLMServerLLM`.*'Coming from distilabel"):
        from distilabel_llm.llm import vLLM  # noqa: F401
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for name, (_, section) in NOT_AVAILABLE.items():
        with pytest.raises(ImportError, match=f"`{name}` has no class"):
            exec(f"from distilabel_llm.llm import {name}", {})
        assert f"## {section}\n" in readme


def test_tasks_package_exports() -> None:
    from distilabel_llm import tasks

    expected = {
        "Task",
        "Prompt",
        "SupportedFormats",
        "TextGenerationTask",
        "SelfInstructTask",
        "UltraFeedbackTask",
        "JudgeLMTask",
        "EvolComplexityTask",
        "EvolQualityTask",
    }
    assert expected <= set(tasks.__all__)
    for name in expected:
        assert getattr(tasks, name) is not None
    for name in expected - {"Task", "Prompt", "SupportedFormats"}:
        assert issubclass(getattr(tasks, name), tasks.Task)


def test_futures_module_exports() -> None:
    from distilabel_llm.utils import futures

    assert futures.__all__ == ["when_all_complete"]
    assert callable(futures.when_all_complete)


def test_package_ships_py_typed() -> None:
    assert (REPO / "distilabel_llm" / "py.typed").is_file()


@pytest.mark.timeout(60)
def test_core_imports_no_heavy_backend() -> None:
    # A fresh interpreter: this test process may already have imported anything.
    code = (
        "import sys, json\n"
        "import distilabel_llm, distilabel_llm.llm, distilabel_llm.tasks\n"
        "import distilabel_llm.progress, distilabel_llm.utils.futures, distilabel_llm.testing\n"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
