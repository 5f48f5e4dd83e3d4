"""Legacy distilabel's `llm.openai`: where its scripts import `OpenAILLM`."""

from distilabel_llm.llm.backends.openai import OpenAILLM

__all__ = ["OpenAILLM"]
