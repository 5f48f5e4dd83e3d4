"""Legacy distilabel's `utils.futures`: where its scripts import `when_all_complete`."""

from distilabel_llm.utils.future_tools import when_all_complete

__all__ = ["when_all_complete"]
