"""The contract every LLM kind shares, the in-process `LLM`, generation settings, outputs
and structured output."""
