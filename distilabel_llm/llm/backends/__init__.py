"""The backends: transformers, llama.cpp, OpenAI-compatible servers and their presets, `AsyncLLM`.

Each heavy backend is imported only when used; see `distilabel_llm.llm` for the names.
"""
