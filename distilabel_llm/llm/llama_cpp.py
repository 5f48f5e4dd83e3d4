"""`LlamaCppLLM`: generation with a GGUF model through `llama-cpp-python`."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Optional, Tuple, Union

from distilabel_llm.errors import MissingExtraError
from distilabel_llm.llm.base import LLM, PromptFormattingFn
from distilabel_llm.llm.outputs import LLMOutput, TokenStatistics
from distilabel_llm.tasks.prompt import ChatMessages, SupportedFormats
from distilabel_llm.utils.checks import check_positive_int

try:
    import llama_cpp
except ImportError as _error:  # pragma: no cover - exercised in a subprocess by the tests
    raise MissingExtraError("llama-cpp-python", "llama-cpp") from _error

if TYPE_CHECKING:
    from distilabel_llm.tasks.base import Task

__all__ = ["LlamaCppLLM"]

DEFAULT_SEED = 1234


class LlamaCppLLM(LLM):
    """Generates with a `llama_cpp.Llama` model.

    String prompts use text completion; chat messages (`prompt_format="openai"`) use chat
    completion with the chat template stored in the GGUF file. Each generation of a row is
    sampled with seed `seed + i` (i = 0 .. num_generations - 1), so outputs are reproducible
    and do not depend on batching or on the other rows. A temperature of 0 decodes greedily,
    once per row. Calls into the model are serialised, since a `Llama` is not thread-safe.

    Args:
        model: the loaded model, e.g. from `llama_cpp.Llama(model_path=...)`.
        task: the task that builds prompts and parses outputs.
        max_new_tokens: most tokens generated per output.
        temperature: sampling temperature; 0 for greedy decoding.
        top_p: nucleus sampling threshold.
        top_k: sample from the `top_k` likeliest tokens.
        repeat_penalty: penalty on repeated tokens; 1.0 for none.
        seed: base seed of the sampler.
        num_threads: run each row on a pool of this many threads and return futures.
        prompt_format: render `Prompt`s in this format.
        prompt_formatting_fn: render `Prompt`s with this function; wins over `prompt_format`.
    """

    def __init__(
        self,
        model: llama_cpp.Llama,
        task: Task,
        max_new_tokens: int = 128,
        temperature: float = 0.8,
        top_p: float = 0.95,
        top_k: int = 40,
        repeat_penalty: float = 1.1,
        seed: int = DEFAULT_SEED,
        num_threads: Optional[int] = None,
        prompt_format: Optional[SupportedFormats] = None,
        prompt_formatting_fn: Optional[PromptFormattingFn] = None,
    ) -> None:
        super().__init__(
            task,
            num_threads=num_threads,
            prompt_format=prompt_format,
            prompt_formatting_fn=prompt_formatting_fn,
        )
        if not isinstance(model, llama_cpp.Llama):
            raise TypeError(
                f"`model` must be a llama_cpp.Llama, not {type(model).__name__}; "
                "use LlamaCppLLM.from_path to load a GGUF file."
            )
        check_positive_int("max_new_tokens", max_new_tokens)
        self.model = model
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        self.top_p = top_p
        self.top_k = top_k
        self.repeat_penalty = repeat_penalty
        self.seed = seed
        self._model_lock = threading.Lock()
        bos_id = model.token_bos()
        self._bos_text = model.detokenize([bos_id], special=True) if bos_id >= 0 else b""

    @classmethod
    def from_path(
        cls,
        path: Union[str, Path],
        task: Task,
        n_ctx: int = 2048,
        n_threads: Optional[int] = None,
        n_gpu_layers: int = 0,
        model_kwargs: Optional[Dict[str, Any]] = None,
        **kwargs: Any,
    ) -> LlamaCppLLM:
        """Loads the GGUF file at `path`.

        Args:
            path: the GGUF file.
            task: the task that builds prompts and parses outputs.
            n_ctx: context length in tokens (prompt and output together).
            n_threads: CPU threads llama.cpp uses; its default if None.
            n_gpu_layers: layers to offload to the GPU; -1 for all.
            model_kwargs: further arguments for `llama_cpp.Llama`.
            **kwargs: arguments of `LlamaCppLLM` itself (`max_new_tokens`, `seed`, ...).
        """
        if not Path(path).is_file():
            raise FileNotFoundError(f"No GGUF file at {str(path)!r}.")
        model = llama_cpp.Llama(
            model_path=str(path),
            n_ctx=n_ctx,
            n_threads=n_threads,
            n_gpu_layers=n_gpu_layers,
            verbose=False,
            **(model_kwargs or {}),
        )
        return cls(model, task, **kwargs)

    @property
    def model_name(self) -> str:
        """The path of the GGUF file."""
        return self.model.model_path

    def _generate(
        self, inputs: List[Dict[str, Any]], num_generations: int = 1
    ) -> List[List[LLMOutput]]:
        rows: List[List[LLMOutput]] = []
        # Greedy decoding gives identical outputs, so each row is generated once.
        distinct = num_generations if self.temperature > 0 else 1
        for prompt in self._generate_prompts(inputs):
            outputs = [self._generate_one(prompt, self.seed + i) for i in range(distinct)]
            rows.append([outputs[i % distinct] for i in range(num_generations)])
        return rows

    def __rich_repr__(self) -> Iterator[Tuple[str, Any]]:
        yield from super().__rich_repr__()
        yield "max_new_tokens", self.max_new_tokens
        yield "temperature", self.temperature
        yield "seed", self.seed

    # Internals.

    def _generate_one(self, prompt: Union[str, ChatMessages], seed: int) -> LLMOutput:
        sampling = {
            "max_tokens": self.max_new_tokens,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "top_k": self.top_k,
            "repeat_penalty": self.repeat_penalty,
            "seed": seed,
        }
        with self._model_lock:
            if isinstance(prompt, str):
                response = self.model.create_completion(self._tokenize(prompt), **sampling)
                text = response["choices"][0]["text"]
            else:
                response = self.model.create_chat_completion(messages=prompt, **sampling)
                text = response["choices"][0]["message"]["content"]
        usage = response.get("usage") or {}
        statistics = None
        if "prompt_tokens" in usage:
            statistics = TokenStatistics(
                input_tokens=usage["prompt_tokens"], output_tokens=usage["completion_tokens"]
            )
        return self._output(prompt, text, statistics)

    def _tokenize(self, prompt: str) -> List[int]:
        """The prompt's tokens, special tokens parsed; no second BOS if it starts with one."""
        text = prompt.encode("utf-8")
        add_bos = not (self._bos_text and text.startswith(self._bos_text))
        return self.model.tokenize(text, add_bos=add_bos, special=True)
