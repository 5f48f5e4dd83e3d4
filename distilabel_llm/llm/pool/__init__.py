"""`LLMPool`: one call spread over several LLMs, with its scheduler and fault isolation."""
