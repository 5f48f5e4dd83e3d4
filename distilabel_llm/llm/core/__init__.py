"""The contract every LLM kind shares, the in-process `LLM`, generation settings, outputs
and structured output."""

from distilabel_llm.llm.core.contract import BaseLLM, GenerateResult, LoadLLMFn, ProgressCallback
from distilabel_llm.llm.core.llm import LLM
from distilabel_llm.llm.core.settings import GenerationRequest, GenerationSettings

__all__ = [
    "LLM",
    "BaseLLM",
    "GenerateResult",
    "GenerationRequest",
    "GenerationSettings",
    "LoadLLMFn",
    "ProgressCallback",
]
