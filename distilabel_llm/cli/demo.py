"""Runs the `demo` command: a short job on tiny local models."""

from __future__ import annotations

import argparse

from rich.console import Console


def run(args: argparse.Namespace, console: Console) -> int:
    from distilabel_llm.pipeline.demo import run_demo

    run_demo(
        output_dir=args.output_dir,
        rows=args.rows,
        max_new_tokens=args.max_new_tokens,
        cache_dir=args.cache_dir,
        console=console,
        backends=args.backends,
    )
    return 0
