"""Fixtures for the core tests: LLMs that are always closed, and an LLM gated by events."""

from __future__ import annotations

import threading
from typing import Any, Callable, Dict, Iterator, List

import pytest

from distilabel_llm.llm.core.llm import LLM
from distilabel_llm.llm.core.outputs import LLMOutput
from distilabel_llm.tasks import TextGenerationTask


class GatedLLM(LLM):
    """An LLM whose rows each wait for their own event, so tests choose completion order.

    Records every `_generate` call's inputs. `release(text)` lets the row whose `input` is
    `text` finish; `started(text)` is set once that row's `_generate` call has begun and
    `finished(text)` once it has built its outputs.
    """

    def __init__(self, texts: List[str], **kwargs: Any) -> None:
        super().__init__(TextGenerationTask(), **kwargs)
        self._gates = {text: threading.Event() for text in texts}
        self._started = {text: threading.Event() for text in texts}
        self._finished = {text: threading.Event() for text in texts}
        self._lock = threading.Lock()
        self.calls: List[List[Dict[str, Any]]] = []

    @property
    def model_name(self) -> str:
        return "gated"

    def release(self, text: str) -> None:
        self._gates[text].set()

    def started(self, text: str) -> threading.Event:
        return self._started[text]

    def finished(self, text: str) -> threading.Event:
        return self._finished[text]

    def _generate(
        self, inputs: List[Dict[str, Any]], num_generations: int = 1
    ) -> List[List[LLMOutput]]:
        with self._lock:
            self.calls.append(list(inputs))
        for row in inputs:
            self._started[row["input"]].set()
            if not self._gates[row["input"]].wait(timeout=10):
                raise TimeoutError(f"row {row['input']!r} was never released")
        prompts = self._generate_prompts(inputs)
        outputs = [
            [self._output(prompt, f"{row['input']} #{k}") for k in range(num_generations)]
            for row, prompt in zip(inputs, prompts)
        ]
        for row in inputs:
            self._finished[row["input"]].set()
        return outputs


@pytest.fixture
def make_gated() -> Iterator[Callable[..., GatedLLM]]:
    """Builds `GatedLLM`s; releases every gate and closes them after the test."""
    made: List[GatedLLM] = []

    def make(texts: List[str], **kwargs: Any) -> GatedLLM:
        llm = GatedLLM(texts, **kwargs)
        made.append(llm)
        return llm

    yield make
    for llm in made:
        for text in llm._gates:
            llm.release(text)
        llm.close()
