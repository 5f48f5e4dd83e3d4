"""Legacy distilabel's `llm.llama_cpp`: where its scripts import `LlamaCppLLM`."""

from distilabel_llm.llm.backends.llama_cpp import LlamaCppLLM

__all__ = ["LlamaCppLLM"]
