"""Benchmarks: scripts that measure distilabel_llm and print a table.

Each module runs on its own (`python -m benchmarks.futures`, or `python benchmarks/futures.py`)
and exposes `run(quick: bool) -> List[dict]` for a runner that calls them all. Shared helpers
for timing and tables live in `benchmarks._table`.
"""
