"""LLMs whose model lives elsewhere: `RemoteLLM`, and its transports `ProcessLLM` and `RayLLM`."""
