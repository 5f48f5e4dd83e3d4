"""Small helpers shared by the LLM layer."""

from distilabel_llm.utils.future_tools import when_all_complete

__all__ = ["when_all_complete"]
