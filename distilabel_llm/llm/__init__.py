"""The LLM layer: the `LLM` base class and its output type.

Backends with heavy dependencies are imported lazily, on first attribute access, so that
`import distilabel_llm.llm` never imports torch, transformers, llama_cpp or openai.
"""

from distilabel_llm.llm.base import LLM
from distilabel_llm.llm.outputs import LLMOutput, TokenStatistics

__all__ = ["LLM", "LLMOutput", "TokenStatistics"]
