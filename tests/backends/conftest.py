"""Fixtures for the backend tests: the kit's tiny models, loaded once per session, LLMs built on
them and always closed, and the fault server."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Callable, Iterator, List, Sequence, Tuple

import pytest
from fault_server import FaultServer

RunWithout = Callable[[Sequence[str], str], subprocess.CompletedProcess]


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
def make_transformers_llm(hf_model_and_tokenizer: Tuple[Any, Any]) -> Iterator[Any]:
    """Builds `TransformersLLM`s on the shared tiny model (24 new tokens unless told; `model`
    and `tokenizer` may be given instead), and closes them afterwards."""
    from distilabel_llm.llm.backends.transformers import TransformersLLM
    from distilabel_llm.tasks import TextGenerationTask

    model, tokenizer = hf_model_and_tokenizer
    made: List[Any] = []

    def make(**kwargs: Any) -> Any:
        kwargs.setdefault("max_new_tokens", 24)
        llm = TransformersLLM(
            kwargs.pop("model", model),
            kwargs.pop("tokenizer", tokenizer),
            TextGenerationTask(),
            **kwargs,
        )
        made.append(llm)
        return llm

    yield make
    for llm in made:
        llm.close()


@pytest.fixture
def server() -> Iterator[FaultServer]:
    """The fault server (`fault_server.py`) on an ephemeral port, serving the model
    "fault-model"; stopped after the test."""
    with FaultServer() as fault_server:
        yield fault_server


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
