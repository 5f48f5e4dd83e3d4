"""Runs the `build-tiny-models` command: builds the tiny test models and prints their paths."""

from __future__ import annotations

import argparse

from rich.console import Console


def run(args: argparse.Namespace, console: Console) -> int:
    from distilabel_llm.testing.tiny_models import ensure_tiny_models

    models = ensure_tiny_models(args.cache_dir)
    print(f"Hugging Face model: {models.hf_path}")  # plain lines: scripts read these paths
    print(f"GGUF model:         {models.gguf_path}")
    return 0
