"""The LLM layer: the contract every LLM kind keeps (`BaseLLM`), the `LLM` and `AsyncLLM`
bases, their output types and settings, `ProcessLLM`, `RayLLM`, `LLMPool` and the backends.

Backends with heavy dependencies are imported on first attribute access, so that
`import distilabel_llm.llm` never imports torch, transformers, llama_cpp or openai.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from distilabel_llm.llm._not_available import NOT_AVAILABLE, not_available
from distilabel_llm.llm.backends.async_llm import AsyncLLM, AsyncResult
from distilabel_llm.llm.core.contract import BaseLLM
from distilabel_llm.llm.core.cost import Prices
from distilabel_llm.llm.core.llm import LLM
from distilabel_llm.llm.core.outputs import (
    GenerateOutput,
    LLMOutput,
    TokenStatistics,
    merge_responses,
)
from distilabel_llm.llm.core.settings import GenerationSettings
from distilabel_llm.llm.members.process import ProcessLLM
from distilabel_llm.llm.members.ray import RayLLM
from distilabel_llm.llm.members.remote import RemoteLLM
from distilabel_llm.llm.pool.pool import LLMPool, PoolStrategy

if TYPE_CHECKING:
    from distilabel_llm.llm.backends.llama_cpp import LlamaCppLLM
    from distilabel_llm.llm.backends.openai import OpenAILLM
    from distilabel_llm.llm.backends.providers import (
        AnyscaleLLM,
        InferenceEndpointsLLM,
        JSONOpenAILLM,
        MistralAILLM,
        OllamaLLM,
        TogetherInferenceLLM,
        VLLMServerLLM,
    )
    from distilabel_llm.llm.backends.transformers import TransformersLLM

_LAZY = {
    "LlamaCppLLM": "distilabel_llm.llm.backends.llama_cpp",
    "OpenAILLM": "distilabel_llm.llm.backends.openai",
    "TransformersLLM": "distilabel_llm.llm.backends.transformers",
    **{
        name: "distilabel_llm.llm.backends.providers"
        for name in (
            "AnyscaleLLM",
            "InferenceEndpointsLLM",
            "JSONOpenAILLM",
            "MistralAILLM",
            "OllamaLLM",
            "TogetherInferenceLLM",
            "VLLMServerLLM",
        )
    },
}

__all__ = [
    "LLM",
    "AnyscaleLLM",
    "AsyncLLM",
    "AsyncResult",
    "BaseLLM",
    "GenerateOutput",
    "GenerationSettings",
    "InferenceEndpointsLLM",
    "JSONOpenAILLM",
    "LLMOutput",
    "LLMPool",
    "LlamaCppLLM",
    "MistralAILLM",
    "OllamaLLM",
    "OpenAILLM",
    "PoolStrategy",
    "Prices",
    "ProcessLLM",
    "RayLLM",
    "RemoteLLM",
    "TogetherInferenceLLM",
    "TokenStatistics",
    "TransformersLLM",
    "VLLMServerLLM",
    "merge_responses",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    if name in NOT_AVAILABLE:  # an ImportError that says what to use instead
        raise not_available(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
