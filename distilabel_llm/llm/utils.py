"""Legacy distilabel's `llm.utils` names, where its scripts import them from."""

from distilabel_llm.llm.core.outputs import LLMOutput, TokenStatistics, merge_responses

__all__ = ["LLMOutput", "TokenStatistics", "merge_responses"]
