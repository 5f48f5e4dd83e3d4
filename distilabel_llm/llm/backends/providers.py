"""OpenAI-compatible providers as presets of `OpenAILLM`: where each serves, and where its key is.

Legacy distilabel had a class per provider; most of them now speak the OpenAI protocol, so each
here is `OpenAILLM` with a default base URL and the environment variable of its key. Everything
else (retries, concurrency, generation settings, failed rows) is `OpenAILLM`'s.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, ClassVar, Optional

from distilabel_llm.llm.backends.openai import OpenAILLM

if TYPE_CHECKING:
    from distilabel_llm.tasks.base import Task

__all__ = [
    "AnyscaleLLM",
    "InferenceEndpointsLLM",
    "JSONOpenAILLM",
    "MistralAILLM",
    "OllamaLLM",
    "TogetherInferenceLLM",
    "VLLMServerLLM",
]


class _ProviderLLM(OpenAILLM):
    """`OpenAILLM` aimed at one provider; `base_url` and `api_key` still override."""

    default_base_url: ClassVar[str]
    base_url_variable: ClassVar[Optional[str]] = None
    api_key_variable: ClassVar[Optional[str]] = None
    # Servers that take no key (a local one) get this text when none is set.
    keyless_api_key: ClassVar[Optional[str]] = None

    def __init__(
        self,
        task: Task,
        model: str,
        *,
        api_key: Optional[str] = None,
        base_url: Optional[str] = None,
        **kwargs: Any,
    ) -> None:
        if base_url is None and self.base_url_variable:
            base_url = os.environ.get(self.base_url_variable)
        if api_key is None and self.api_key_variable:
            api_key = os.environ.get(self.api_key_variable)
        api_key = api_key or self.keyless_api_key
        if not api_key:
            raise ValueError(
                f"{type(self).__name__} needs an API key: pass `api_key=...` or set "
                f"{self.api_key_variable}."
            )
        super().__init__(
            task, model=model, api_key=api_key, base_url=base_url or self.default_base_url, **kwargs
        )


class AnyscaleLLM(_ProviderLLM):
    """Anyscale Endpoints; the key from `ANYSCALE_API_KEY`."""

    default_base_url = "https://api.endpoints.anyscale.com/v1"
    api_key_variable = "ANYSCALE_API_KEY"


class TogetherInferenceLLM(_ProviderLLM):
    """Together AI's inference API; the key from `TOGETHER_API_KEY`."""

    default_base_url = "https://api.together.xyz/v1"
    api_key_variable = "TOGETHER_API_KEY"


class MistralAILLM(_ProviderLLM):
    """Mistral AI's API (`model="mistral-small-latest"`...); the key from `MISTRAL_API_KEY`."""

    default_base_url = "https://api.mistral.ai/v1"
    api_key_variable = "MISTRAL_API_KEY"


class OllamaLLM(_ProviderLLM):
    """A local Ollama server (`OLLAMA_HOST`'s, else localhost:11434); `model` as Ollama names
    it (`"llama3.1"`). It takes no key."""

    default_base_url = "http://localhost:11434/v1"
    keyless_api_key = "ollama"

    def __init__(self, task: Task, model: str, **kwargs: Any) -> None:
        host = os.environ.get("OLLAMA_HOST")
        if "base_url" not in kwargs and host:
            kwargs["base_url"] = f"{host.rstrip('/')}/v1"
        super().__init__(task, model, **kwargs)


class VLLMServerLLM(_ProviderLLM):
    """A vLLM OpenAI-compatible server (`vllm serve MODEL`): `VLLM_BASE_URL`, else
    localhost:8000; `model` as the server names it. A key only if the server asks for one
    (`VLLM_API_KEY`). For vLLM's own sampling options, use the `extra_body` setting."""

    default_base_url = "http://localhost:8000/v1"
    base_url_variable = "VLLM_BASE_URL"
    api_key_variable = "VLLM_API_KEY"
    keyless_api_key = "none"


class InferenceEndpointsLLM(_ProviderLLM):
    """A Hugging Face Inference Endpoint or a TGI server, through their OpenAI-compatible
    Messages API; the token from `HF_TOKEN`.

    Args:
        task: the task that builds prompts and parses outputs.
        model: the model id for the serverless API (`"meta-llama/Llama-3.1-8B-Instruct"`),
            or, with `base_url` (an endpoint's or a TGI server's URL ending in `/v1`), the
            name the server answers to ("tgi" by default there).
        **kwargs: as for `OpenAILLM`.
    """

    default_base_url = ""
    api_key_variable = "HF_TOKEN"

    def __init__(self, task: Task, model: str = "tgi", **kwargs: Any) -> None:
        if kwargs.get("base_url") is None:
            kwargs["base_url"] = f"https://api-inference.huggingface.co/models/{model}/v1"
        super().__init__(task, model, **kwargs)


class JSONOpenAILLM(OpenAILLM):
    """`OpenAILLM` answering in JSON mode (`response_format={"type": "json_object"}`), as legacy
    `JSONOpenAILLM` did; the prompt must still ask for JSON, as OpenAI requires."""

    def __init__(self, task: Task, *args: Any, **kwargs: Any) -> None:
        settings = {
            "response_format": {"type": "json_object"},
            **(kwargs.pop("generation_kwargs", None) or {}),
        }
        super().__init__(task, *args, generation_kwargs=settings, **kwargs)
