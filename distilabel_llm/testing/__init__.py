"""Test and demo helpers: a fake LLM, and (with the `kit` extra) tiny real models built offline."""

from distilabel_llm.testing.fake import FakeLLM

__all__ = ["FakeLLM"]
