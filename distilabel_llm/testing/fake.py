"""A fake LLM with chosen latency and failures, for tests, benchmarks and examples."""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any, Dict, List, Optional

from distilabel_llm.llm.core.llm import LLM, PromptFormattingFn
from distilabel_llm.llm.core.outputs import LLMOutput, TokenStatistics
from distilabel_llm.llm.core.settings import GenerationSettings
from distilabel_llm.tasks.prompt import SupportedFormats

if TYPE_CHECKING:
    from distilabel_llm.tasks.base import Task

__all__ = ["FakeLLM"]


class FakeLLM(LLM):
    """An LLM that answers instantly or after a set latency, and fails on demand.

    Each output's text is `"<model_name> #<k>: <input>"`, where `k` is the output's generation slot
    in its row (its row's first slot, `GenerationSettings.offsets`, plus its index in the call, as a
    seeded sampler would use), so results can be checked exactly however a pool splits them. With
    `show_settings`, the call's generation settings follow, as `" [name=value, ...]"`. Token counts
    are the prompt's and the text's whitespace-separated words.

    A transient failure comes back as an API backend reports a request its client's retries
    could not save: in the row's outputs, with `raw_output=None`, an `error` and
    `transient=True` (what an `LLMPool` cools a member down for).

    Args:
        task: the task that builds prompts and parses outputs.
        model_name: the name reported in outputs.
        latency: seconds each `_generate` call sleeps (one model call, whatever its batch).
        latency_per_generation: seconds added per row and generation of a call.
        raise_on: rows whose `input` contains this text make `_generate` raise RuntimeError.
        exit_on: rows whose `input` contains this text end the process with `os._exit(3)`,
            as a segfault or an OOM kill would.
        show_settings: add the call's generation settings to each output's text.
        transient_on: rows whose `input` contains this text fail for a transient reason (a
            rate limit); may be changed between calls.
        transient_calls: its first `transient_calls` calls fail for a transient reason on
            every row (a model down for a while, then back).
        num_threads, prompt_format, prompt_formatting_fn, generation_kwargs: as for `LLM`.
        input_cost_per_million_tokens, output_cost_per_million_tokens: prices, as for `LLM`;
            each output's statistics then carry its `cost` (of the counted words).
    """

    supported_generation_kwargs = ("max_new_tokens", "temperature", "top_p", "stop", "seed")

    def __init__(
        self,
        task: Task,
        model_name: str = "fake",
        latency: float = 0.0,
        latency_per_generation: float = 0.0,
        raise_on: Optional[str] = None,
        exit_on: Optional[str] = None,
        num_threads: Optional[int] = None,
        prompt_format: Optional[SupportedFormats] = None,
        prompt_formatting_fn: Optional[PromptFormattingFn] = None,
        show_settings: bool = False,
        generation_kwargs: Optional[Dict[str, Any]] = None,
        transient_on: Optional[str] = None,
        transient_calls: int = 0,
        *,
        input_cost_per_million_tokens: Optional[float] = None,
        output_cost_per_million_tokens: Optional[float] = None,
    ) -> None:
        super().__init__(
            task,
            num_threads,
            prompt_format,
            prompt_formatting_fn,
            generation_kwargs,
            input_cost_per_million_tokens=input_cost_per_million_tokens,
            output_cost_per_million_tokens=output_cost_per_million_tokens,
        )
        self.show_settings = show_settings
        self._model_name = model_name
        self.latency = latency
        self.latency_per_generation = latency_per_generation
        self.raise_on = raise_on
        self.exit_on = exit_on
        self.transient_on = transient_on
        self.transient_calls = transient_calls
        self.calls = 0

    @property
    def model_name(self) -> str:
        return self._model_name

    def _generate(
        self,
        inputs: List[Dict[str, Any]],
        num_generations: int = 1,
        generation_kwargs: Optional[GenerationSettings] = None,
    ) -> List[List[LLMOutput]]:
        call = self._settings(generation_kwargs)
        offsets = call.row_offsets(len(inputs))
        settings = dict(call)
        if call.structured is not None:
            settings["structured_output"] = call.structured
        shown = ""
        if self.show_settings and settings:
            shown = " [" + ", ".join(f"{k}={v!r}" for k, v in sorted(settings.items())) + "]"
        self.calls += 1
        for row in inputs:
            text = str(row.get("input", ""))
            if self.exit_on is not None and self.exit_on in text:
                os._exit(3)
            if self.raise_on is not None and self.raise_on in text:
                raise RuntimeError(f"{self._model_name} was told to fail on {text!r}")
        delay = self.latency + self.latency_per_generation * len(inputs) * num_generations
        if delay > 0:
            time.sleep(delay)
        prompts = self._generate_prompts(inputs)
        rows = []
        for row, prompt, offset in zip(inputs, prompts, offsets):
            if self._fails_transiently(row):
                rows.append([self._transient_output(prompt) for _ in range(num_generations)])
                continue
            outputs = []
            for k in range(num_generations):
                text = f"{self._model_name} #{offset + k}: {row.get('input', '')}{shown}"
                statistics = TokenStatistics(
                    input_tokens=len(str(prompt).split()), output_tokens=len(text.split())
                )
                outputs.append(self._output(prompt, text, statistics))
            rows.append(outputs)
        return rows

    def _fails_transiently(self, row: Dict[str, Any]) -> bool:
        if self.calls <= self.transient_calls:  # `calls` counts this call already
            return True
        return self.transient_on is not None and self.transient_on in str(row.get("input", ""))

    def _transient_output(self, prompt: Any) -> LLMOutput:
        output = self._output(
            prompt, None, error=f"{self._model_name}: 429 Too Many Requests (after retries)"
        )
        output["transient"] = True
        return output
