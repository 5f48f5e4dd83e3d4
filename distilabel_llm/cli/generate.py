"""Runs the `generate` command: builds the models, runs the Pipeline job over the input rows,
prints the summary and returns the exit code."""

from __future__ import annotations

import argparse
import logging
import os
from typing import Any, Dict, List, Optional, Tuple

from rich.console import Console
from rich.markup import escape

from distilabel_llm.cli import options
from distilabel_llm.cli.exit_codes import EXIT_BUDGET, EXIT_ROWS_FAILED
from distilabel_llm.errors import BudgetExhaustedError
from distilabel_llm.llm.core.catalogue import check_generation_kwargs
from distilabel_llm.pipeline.backends import build_llm


def run(args: argparse.Namespace, console: Console) -> int:
    from distilabel_llm.pipeline.checkpoint import check_checkpoint_path
    from distilabel_llm.pipeline.core import Pipeline
    from distilabel_llm.pipeline.dataset import read_jsonl
    from distilabel_llm.pipeline.summary import summary_table

    rows = read_jsonl(args.input)  # a bad input or output fails before any model starts
    check_checkpoint_path(args.output)
    generation_kwargs = options.generation_kwargs(args)
    labeller_generation_kwargs = check_generation_kwargs(
        args.labeller_generation_kwargs, None, "--labeller-generation-kwargs"
    )
    _warn_if_greedy(args, generation_kwargs)
    llms: List[Any] = []
    finished = False
    try:
        generator, labeller = _build_llms(args, llms)
        pipeline = Pipeline(generator=generator, labeller=labeller)
        stopped = _run_job(pipeline, rows, args, generation_kwargs, labeller_generation_kwargs)
        assert pipeline.stats is not None
        console.print(summary_table(pipeline.stats, generator))
        finished = True
        if stopped is not None:
            _print_error(str(stopped))
            return EXIT_BUDGET
    finally:
        # After Ctrl-C or an error, the rows in flight are not wanted: stop the models now.
        for llm in reversed(llms):
            llm.teardown(wait=finished)
    console.print(f"Wrote {len(rows)} rows to [bold]{escape(args.output)}[/bold]", soft_wrap=True)
    failed = pipeline.stats.rows_failed
    if failed:
        Console(stderr=True).print(
            f"[bold red]error:[/bold red] {failed} of {len(rows)} rows failed; their 'error' "
            "field says why. Run the same command again to retry them.",
            highlight=False,
            soft_wrap=True,
        )
        return EXIT_ROWS_FAILED
    return 0


def _warn_if_greedy(args: argparse.Namespace, generation_kwargs: Dict[str, Any]) -> None:
    if args.num_generations > 1 and _greedy(args.backend, generation_kwargs):
        logging.getLogger("distilabel_llm").warning(
            "--num-generations %d with greedy decoding (the %s backend's default) gives %d "
            "identical generations per row; pass --temperature 0.8 (or any above 0) to sample.",
            args.num_generations,
            args.backend,
            args.num_generations,
        )


def _greedy(backend: str, settings: Dict[str, Any]) -> bool:
    if "temperature" in settings:
        return settings["temperature"] == 0
    return backend == "transformers" and not settings.get("do_sample", False)


def _build_llms(args: argparse.Namespace, llms: List[Any]) -> Tuple[Any, Optional[Any]]:
    """Builds the generator and the labeller, if any; appends each to `llms` as soon as it is
    built, so that the caller tears down those built before a failure."""
    shared = {
        "threads": args.threads,
        "base_url": args.base_url,
        "api_key": args.api_key or os.environ.get("OPENAI_API_KEY"),
    }
    labeller_backend = args.labeller_backend or args.backend
    generator = build_llm(
        options.task(args.task),
        args.backend,
        args.model,
        processes=args.processes,
        devices=args.devices,
        ray_replicas=args.ray_replicas or 0,
        ray_gpus=args.ray_gpus,
        **shared,
        **options.model_options(args, args.backend),
    )
    llms.append(generator)
    labeller = None
    if args.labeller:
        labeller = build_llm(
            options.task(args.labeller),
            labeller_backend,
            args.labeller_model or args.model,
            processes=min(args.processes, 1),
            **shared,
            **options.model_options(args, labeller_backend, "labeller"),
        )
        llms.append(labeller)
    return generator, labeller


def _run_job(
    pipeline: Any,
    rows: List[Dict[str, Any]],
    args: argparse.Namespace,
    generation_kwargs: Dict[str, Any],
    labeller_generation_kwargs: Dict[str, Any],
) -> Optional[BudgetExhaustedError]:
    """Runs the job; returns why the budget stopped it, if it did. The requests in flight
    finished then, so the job ended as cleanly as one that ran out of rows."""
    try:
        pipeline.generate(
            rows,
            num_generations=args.num_generations,
            batch_size=args.batch_size,
            checkpoint=args.output,
            display_progress_bar=not args.no_progress,
            console=Console(stderr=True),
            generation_kwargs=generation_kwargs,
            labeller_generation_kwargs=labeller_generation_kwargs,
            max_budget=args.max_budget,
        )
    except BudgetExhaustedError as stopped:
        return stopped
    return None


def _print_error(message: str) -> None:
    # soft_wrap: a command or a path in the message must stay copyable off a terminal.
    Console(stderr=True).print(
        f"[bold red]error:[/bold red] {escape(message)}", highlight=False, soft_wrap=True
    )
