"""Small helpers shared by the LLM layer."""

from distilabel_llm.utils.futures import when_all_complete

__all__ = ["when_all_complete"]
