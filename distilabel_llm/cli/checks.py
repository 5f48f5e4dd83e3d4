"""The checks of flags taken together, beyond what argparse checks: each returns the usage
problem, if any, that the parser then reports (exit code 2) before any work."""

from __future__ import annotations

import argparse
from typing import Optional

from distilabel_llm.cli.options import OPENAI_LIMITS, prices


def usage_problem(args: argparse.Namespace) -> Optional[str]:
    """What is wrong with the command's flags taken together, if anything."""
    if getattr(args, "ray_gpus", 0) and not args.ray_replicas:
        return "--ray-gpus needs --ray-replicas"
    if getattr(args, "continuous_batching", False) and "transformers" not in (
        args.backend,
        args.labeller_backend,
    ):
        return "--continuous-batching needs --backend transformers"
    if args.command == "generate":
        return _generate_args_problem(args)
    return None


def _generate_args_problem(args: argparse.Namespace) -> Optional[str]:
    """What is wrong with a `generate` command's flags taken together, if anything: an output
    that would overwrite the input, or a flag that no backend of the job would use."""
    from distilabel_llm.pipeline.checkpoint import same_file

    if same_file(args.input, args.output):
        return (
            f"--output {args.output!r} is the --input file: the job would read its input rows "
            "back as finished ones and write nothing new; give --output another path"
        )
    backends = {args.backend, args.labeller_backend or args.backend}
    if args.backend == "openai":
        # The client sends requests from this process; there is no model to place.
        placed = [
            flag
            for flag, given in (
                ("--processes", args.processes > 1),
                ("--devices", args.devices),
                ("--ray-replicas", args.ray_replicas),
            )
            if given
        ]
        if placed:
            return (
                f"{placed[0]} says where local models run, but the openai backend runs no "
                "model: it sends requests from this process. Leave it out, and use "
                "--max-concurrency N to keep N requests in flight"
            )
    if args.threads is not None and backends == {"openai"}:
        return "--threads sets a local model's CPU threads; the openai backend runs none"
    given = [name for name in OPENAI_LIMITS if getattr(args, name) is not None]
    if given and "openai" not in backends:
        flag = "--" + given[0].replace("_", "-")
        return (
            f"{flag} applies to the openai backend; a local backend batches rows instead "
            "(--batch-size, and --processes or --devices for replicas)"
        )
    return _cost_args_problem(args)


def _cost_args_problem(args: argparse.Namespace) -> Optional[str]:
    """What is wrong with the prices and budget flags, if anything."""
    labeller_backend = args.labeller_backend or args.backend
    roles = [("generator", "", args.backend)]
    if args.labeller:
        roles.append(("labeller", "labeller-", labeller_backend))
    for role, flag, backend in roles:
        given = len(prices(args, role))
        if given and backend != "openai":
            return (
                f"--{flag}input-cost-per-million-tokens and --{flag}output-cost-per-million-"
                f"tokens price an API model; the {role}'s {backend} backend runs a local one"
            )
        if given == 1:
            return (
                f"give both --{flag}input-cost-per-million-tokens and --{flag}output-cost-per-"
                "million-tokens (0 for a kind of token that is free), or neither"
            )
        if args.max_budget is not None and not given:
            return (
                f"--max-budget needs the {role}'s prices: add --{flag}input-cost-per-million-"
                f"tokens and --{flag}output-cost-per-million-tokens (USD, as the provider "
                "lists them), with --backend openai"
            )
    return None
