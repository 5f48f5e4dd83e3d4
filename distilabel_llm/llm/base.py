"""Legacy distilabel's `llm.base`: where its scripts import `LLM`, `ProcessLLM` and `LLMPool`."""

from distilabel_llm.llm.core.llm import LLM
from distilabel_llm.llm.members.process import ProcessLLM
from distilabel_llm.llm.pool.pool import LLMPool

__all__ = ["LLM", "LLMPool", "ProcessLLM"]
