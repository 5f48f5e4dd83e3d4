"""A small `AsyncLLM` for the tests, importable by child processes: it echoes its input and
records every request it gets."""

from __future__ import annotations

import asyncio
from typing import Any, List, Optional, Tuple

from distilabel_llm.llm import AsyncLLM


class EchoAsyncLLM(AsyncLLM):
    """Answers `echo <seed + k>: <input>`; `short` answers one generation per request whatever
    was asked; inputs containing `fail` raise, `none` give None texts."""

    supported_generation_kwargs = ("max_new_tokens", "temperature", "seed")

    def __init__(self, task: Any = None, short: bool = False, **kwargs: Any) -> None:
        super().__init__(task, **kwargs)
        self.short = short
        self.requests: List[Tuple[str, int, Optional[int]]] = []
        self.requests_running = 0
        self.most_in_flight = 0

    @property
    def model_name(self) -> str:
        return "echo"

    async def agenerate(self, input: Any, num_generations: int = 1, **settings: Any) -> Any:
        text = input if isinstance(input, str) else input[-1]["content"]
        seed = settings.get("seed", 0)
        self.requests.append((text, num_generations, settings.get("seed")))
        self.requests_running += 1
        self.most_in_flight = max(self.most_in_flight, self.requests_running)
        try:
            for _ in range(3):  # let every other request that may start, start
                await asyncio.sleep(0)
            if "fail" in text:
                raise ConnectionError(f"the server dropped {text!r}")
            if "none" in text:
                return [None] * num_generations
            count = 1 if self.short else num_generations
            texts = [f"echo {seed + k}: {text}" for k in range(count)]
            return {
                "generations": texts,
                "statistics": {"input_tokens": [len(text)] * count, "output_tokens": [2] * count},
            }
        finally:
            self.requests_running -= 1


class SingleAsyncLLM(EchoAsyncLLM):
    """An `EchoAsyncLLM` that cannot make several generations in one request."""

    supports_n = False
