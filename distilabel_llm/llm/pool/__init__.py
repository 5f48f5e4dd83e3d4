"""`LLMPool`: one call spread over several LLMs, with its scheduler and fault isolation."""

from distilabel_llm.llm.pool.pool import LLMPool, PoolStrategy

__all__ = [
    "LLMPool",
    "PoolStrategy",
]
