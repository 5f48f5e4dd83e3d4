"""The `distilabel-llm` command: `demo`, `generate` and `build-tiny-models`."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from typing import Any, Dict, List, Optional, Tuple

from rich.console import Console
from rich.markup import escape

from distilabel_llm.errors import BudgetExhaustedError, DistilabelLLMError, ModelError
from distilabel_llm.llm.core.catalogue import check_generation_kwargs
from distilabel_llm.pipeline.backends import BACKENDS, build_llm

__all__ = ["main"]

_EXIT_ERROR = 1
_EXIT_ROWS_FAILED = 3  # the job ran to its end, but some rows have an error
_EXIT_BUDGET = 4  # the budget stopped the job: rows left pending for a larger budget
_EXIT_INTERRUPTED = 130  # the shell's code for a Ctrl-C


def main(argv: Optional[List[str]] = None) -> int:
    """Runs the command line; returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    if getattr(args, "ray_gpus", 0) and not args.ray_replicas:
        parser.error("--ray-gpus needs --ray-replicas")
    if getattr(args, "continuous_batching", False) and "transformers" not in (
        args.backend,
        args.labeller_backend,
    ):
        parser.error("--continuous-batching needs --backend transformers")
    if args.command == "generate":
        problem = _generate_args_problem(args)
        if problem:
            parser.error(problem)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    console = Console()
    try:
        return int(args.run(args, console) or 0)
    except KeyboardInterrupt as stopped:
        message = str(stopped) or "Stopped."
        if "resume" not in message:
            message += " Run the same command again to resume."
        Console(stderr=True).print(message, highlight=False, markup=False)
        return _EXIT_INTERRUPTED
    except (DistilabelLLMError, ModelError, ImportError, OSError) as error:
        # soft_wrap: a command or a path in the message must stay copyable off a terminal.
        Console(stderr=True).print(
            f"[bold red]error:[/bold red] {escape(str(error))}", highlight=False, soft_wrap=True
        )
        return _EXIT_ERROR


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="distilabel-llm",
        description="LLM text generation at scale on local hardware and APIs.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser(
        "demo",
        help="run a short job on tiny local models (no key, no download)",
        description="Builds tiny local models (cached), runs a pool of a llama.cpp and a "
        "transformers process over built-in prompts, writes a JSONL file and a summary.",
    )
    demo.add_argument("--output-dir", default="demo-output", help="default: %(default)s")
    demo.add_argument("--rows", type=_positive, default=32, help="default: %(default)s")
    demo.add_argument("--max-new-tokens", type=_positive, default=24, help="default: %(default)s")
    demo.add_argument("--cache-dir", help="where the tiny models are kept")
    demo.add_argument(
        "--backends",
        type=_demo_backends,
        default=("llama-cpp", "transformers"),
        help="the pool's two members: llama-cpp,transformers (default), or one backend for "
        "two replicas of it; 'transformers' needs no compiler (pip install "
        "'distilabel_llm[transformers,kit]')",
    )
    demo.set_defaults(run=_run_demo)

    generate = commands.add_parser(
        "generate",
        help="generate (and label) for every row of a JSONL file, resumably",
        description="Generates for every row of --input (one JSON object with an 'input' "
        "field per line) and writes each finished row to --output at once. Re-running the "
        "same command after a stop or a crash generates only the rows still missing, and "
        "retries those saved with an error. Exit codes: 0 every row done; 1 the job could not "
        "run or stopped (a model that cannot load, a rejected API key); 3 the job ran to its "
        "end but some rows failed; 4 --max-budget stopped the job, the rows not sent left "
        "pending in --output (run again with a larger --max-budget to resume); 130 "
        "interrupted.",
    )
    generate.add_argument("--input", required=True, help="JSONL file of input rows")
    generate.add_argument(
        "--output",
        required=True,
        help="JSONL file of results, also the checkpoint a re-run resumes from (created, with "
        "its folders, if missing; <output>.job.json records the job's settings)",
    )
    generate.add_argument("--backend", required=True, choices=BACKENDS)
    generate.add_argument("--model", required=True, help="GGUF file, model directory or name")
    placement = generate.add_mutually_exclusive_group()
    placement.add_argument(
        "--processes",
        type=_non_negative,
        default=1,
        help="model processes: 0 runs the model in this process, 2+ a pool of replicas "
        "(default: %(default)s)",
    )
    placement.add_argument("--devices", type=_devices, help="GPUs, one replica each: 0,1")
    placement.add_argument(
        "--ray-replicas",
        type=_positive,
        help="replicas as Ray actors, on the cluster of $RAY_ADDRESS or a local one "
        "(pip install 'distilabel_llm[ray]')",
    )
    generate.add_argument(
        "--ray-gpus",
        type=_non_negative_float,
        default=0.0,
        help="GPUs per Ray replica (default: 0)",
    )
    generate.add_argument(
        "--threads", type=_positive, help="CPU threads per model process (local backends)"
    )
    generate.add_argument(
        "--max-concurrency",
        type=_positive,
        help="requests in flight at once to the server (openai backend; default: 1, one "
        "after another)",
    )
    for unit in ("requests", "tokens"):
        generate.add_argument(
            f"--max-{unit}-per-minute",
            type=_positive,
            metavar="N",
            help=f"the provider's {unit} per minute: requests are paced to it rather than "
            "sent in bursts and bounced with 429s (openai backend; learnt from the server's "
            "x-ratelimit headers when it sends them)",
        )
    generate.add_argument(
        "--continuous-batching",
        action="store_true",
        help="transformers models decode with continuous batching: a row starts as soon as "
        "another ends (transformers 5; best on a GPU)",
    )
    generate.add_argument(
        "--num-generations", type=_positive, default=1, help="outputs per row (default: 1)"
    )
    generate.add_argument(
        "--batch-size",
        type=_positive,
        default=16,
        help="rows per model call; a crash loses only the batches in flight, which the next run "
        "redoes (default: 16)",
    )
    settings = generate.add_argument_group(
        "generation settings",
        "Sent to the generator with every call; unknown or ill-typed ones fail before any work. "
        "Flags win over --generation-kwargs.",
    )
    settings.add_argument(
        "--max-new-tokens", type=_positive, help="most tokens per output (default: 128)"
    )
    settings.add_argument(
        "--temperature",
        type=_non_negative_float,
        help="sampling temperature; 0 decodes greedily (default: the backend's: transformers "
        "0, llama-cpp 0.8, openai 1)",
    )
    settings.add_argument("--top-p", type=_non_negative_float, help="nucleus sampling threshold")
    settings.add_argument(
        "--seed", type=_non_negative, help="base seed: generation k of a row uses seed + k"
    )
    settings.add_argument(
        "--stop", action="append", metavar="TEXT", help="end outputs at TEXT (repeatable)"
    )
    shape = settings.add_mutually_exclusive_group()
    shape.add_argument(
        "--json-schema",
        type=_json_schema_file,
        metavar="FILE",
        help="constrain every output to this JSON schema (structured output)",
    )
    shape.add_argument(
        "--regex", metavar="PATTERN", help="constrain every output to this regular expression"
    )
    settings.add_argument(
        "--generation-kwargs",
        type=_json_object,
        default={},
        metavar="JSON",
        help='any other settings, e.g. \'{"top_k": 40, "repetition_penalty": 1.1}\'',
    )
    settings.add_argument(
        "--labeller-generation-kwargs",
        type=_json_object,
        default={},
        metavar="JSON",
        help="the labeller's settings",
    )
    generate.add_argument(
        "--task",
        choices=("text-generation", "self-instruct"),
        default="text-generation",
        help="what the generator does with each row's 'input' (default: %(default)s)",
    )
    generate.add_argument(
        "--labeller",
        choices=("ultrafeedback", "judgelm"),
        help="rate each row's generations with this task",
    )
    generate.add_argument("--labeller-backend", choices=BACKENDS, help="default: --backend")
    generate.add_argument("--labeller-model", help="default: --model")
    generate.add_argument("--base-url", help="OpenAI-compatible server URL (openai backend)")
    generate.add_argument(
        "--api-key", default=None, help="API key (openai backend); default: $OPENAI_API_KEY"
    )
    _cost_flags(generate)
    generate.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    generate.set_defaults(run=_run_generate)

    build = commands.add_parser(
        "build-tiny-models",
        help="build the tiny test models offline and print their paths",
        description="Builds, offline and in seconds, a tiny llama with random weights and a "
        "tokenizer trained on a built-in corpus, as a transformers directory and a GGUF file "
        "(the tests, the demo and the README snippets use them), and prints their paths. "
        "Built once per recipe and cached.",
    )
    build.add_argument(
        "--cache-dir",
        help="where to keep them (default: $DISTILABEL_LLM_CACHE, else "
        "~/.cache/distilabel_llm/tiny-models)",
    )
    build.set_defaults(run=_run_build)
    return parser


# Flags that shape how requests reach a server, and so only the openai backend takes.
_OPENAI_LIMITS = ("max_concurrency", "max_requests_per_minute", "max_tokens_per_minute")


def _cost_flags(generate: argparse.ArgumentParser) -> None:
    cost = generate.add_argument_group(
        "cost and budget",
        "Prices are yours to give, per model (USD per million tokens, as the provider lists "
        "them); without them a model's cost is unknown, never 0. Each row's statistics then "
        "carry its cost, the progress bar the spend and the summary the cost per model.",
    )
    cost.add_argument(
        "--max-budget",
        type=_positive_float,
        metavar="USD",
        help="the most this run may spend: each batch's worst case is reserved before it is "
        "sent, so requests in flight never overshoot it; when the next batch does not fit, the "
        "job stops sending, finishes what is in flight and exits with code 4 (needs prices)",
    )
    for role, flag in (("generator", ""), ("labeller", "labeller-")):
        for kind in ("input", "output"):
            cost.add_argument(
                f"--{flag}{kind}-cost-per-million-tokens",
                type=_non_negative_float,
                metavar="USD",
                help=f"the {role}'s price of a million {kind} tokens (openai backend)"
                + ("; default: the generator's, for the same model" if flag else ""),
            )


def _run_demo(args: argparse.Namespace, console: Console) -> int:
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


def _model_options(
    args: argparse.Namespace, backend: str, role: str = "generator"
) -> Dict[str, Any]:
    """The flags that only one backend takes, for the `role` model, of `backend`."""
    if backend == "transformers" and args.continuous_batching:
        return {"continuous_batching": True}
    if backend != "openai":
        return {}
    options: Dict[str, Any] = _prices(args, role)
    for name in _OPENAI_LIMITS:
        if getattr(args, name) is not None:
            options[name] = getattr(args, name)
    return options


def _prices(args: argparse.Namespace, role: str) -> Dict[str, float]:
    """The `role` model's prices from the flags, as `load_llm` takes them; empty if none.
    A labeller running the generator's model and backend has the generator's by default."""
    prices = {
        f"{kind}_cost_per_million_tokens": getattr(args, f"{kind}_cost_per_million_tokens")
        for kind in ("input", "output")
    }
    if role == "labeller":
        own = {
            name: getattr(args, f"labeller_{name}")
            for name in prices
            if getattr(args, f"labeller_{name}") is not None
        }
        same = (args.labeller_model or args.model) == args.model and (
            args.labeller_backend or args.backend
        ) == args.backend
        prices = own if own or not same else prices
    return {name: value for name, value in prices.items() if value is not None}


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
    given = [name for name in _OPENAI_LIMITS if getattr(args, name) is not None]
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
        given = len(_prices(args, role))
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


def _run_generate(args: argparse.Namespace, console: Console) -> int:
    from distilabel_llm.pipeline.checkpoint import check_checkpoint_path
    from distilabel_llm.pipeline.core import Pipeline
    from distilabel_llm.pipeline.dataset import read_jsonl
    from distilabel_llm.pipeline.summary import summary_table

    rows = read_jsonl(args.input)  # a bad input or output fails before any model starts
    check_checkpoint_path(args.output)
    generation_kwargs = _generation_kwargs(args)
    labeller_generation_kwargs = check_generation_kwargs(
        args.labeller_generation_kwargs, None, "--labeller-generation-kwargs"
    )
    if args.num_generations > 1 and _greedy(args.backend, generation_kwargs):
        logging.getLogger("distilabel_llm").warning(
            "--num-generations %d with greedy decoding (the %s backend's default) gives %d "
            "identical generations per row; pass --temperature 0.8 (or any above 0) to sample.",
            args.num_generations,
            args.backend,
            args.num_generations,
        )
    options = {
        "threads": args.threads,
        "base_url": args.base_url,
        "api_key": args.api_key or os.environ.get("OPENAI_API_KEY"),
    }
    labeller_backend = args.labeller_backend or args.backend
    llms: List[Any] = []
    finished = False
    try:
        generator = build_llm(
            _task(args.task),
            args.backend,
            args.model,
            processes=args.processes,
            devices=args.devices,
            ray_replicas=args.ray_replicas or 0,
            ray_gpus=args.ray_gpus,
            **options,
            **_model_options(args, args.backend),
        )
        llms.append(generator)
        labeller = None
        if args.labeller:
            labeller = build_llm(
                _task(args.labeller),
                labeller_backend,
                args.labeller_model or args.model,
                processes=min(args.processes, 1),
                **options,
                **_model_options(args, labeller_backend, "labeller"),
            )
            llms.append(labeller)
        pipeline = Pipeline(generator=generator, labeller=labeller)
        stopped = _run_job(pipeline, rows, args, generation_kwargs, labeller_generation_kwargs)
        assert pipeline.stats is not None
        console.print(summary_table(pipeline.stats, generator))
        finished = True
        if stopped is not None:
            _print_error(str(stopped))
            return _EXIT_BUDGET
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
        return _EXIT_ROWS_FAILED
    return 0


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


def _run_build(args: argparse.Namespace, console: Console) -> int:
    from distilabel_llm.testing.tiny_models import ensure_tiny_models

    models = ensure_tiny_models(args.cache_dir)
    print(f"Hugging Face model: {models.hf_path}")  # plain lines: scripts read these paths
    print(f"GGUF model:         {models.gguf_path}")
    return 0


def _task(name: str) -> Any:
    from distilabel_llm.tasks import (
        JudgeLMTask,
        SelfInstructTask,
        TextGenerationTask,
        UltraFeedbackTask,
    )

    tasks = {
        "text-generation": TextGenerationTask,
        "self-instruct": SelfInstructTask,
        "ultrafeedback": UltraFeedbackTask.for_overall_quality,
        "judgelm": JudgeLMTask,
    }
    return tasks[name]()


def _generation_kwargs(args: argparse.Namespace) -> Dict[str, Any]:
    """The generator's settings: --generation-kwargs, then the flags over it; checked."""
    flags = {
        "max_new_tokens": args.max_new_tokens,
        "temperature": args.temperature,
        "top_p": args.top_p,
        "seed": args.seed,
        "stop": args.stop,
        "structured_output": args.json_schema or args.regex,
    }
    chosen = {**args.generation_kwargs, **{k: v for k, v in flags.items() if v is not None}}
    return check_generation_kwargs(chosen, None, "--generation-kwargs")


def _greedy(backend: str, settings: Dict[str, Any]) -> bool:
    if "temperature" in settings:
        return settings["temperature"] == 0
    return backend == "transformers" and not settings.get("do_sample", False)


def _demo_backends(text: str) -> Tuple[str, str]:
    chosen = [name.strip() for name in text.split(",") if name.strip()]
    if not 1 <= len(chosen) <= 2 or not set(chosen) <= {"llama-cpp", "transformers"}:
        raise argparse.ArgumentTypeError(
            f"must be llama-cpp, transformers, or both with a comma, not {text!r}"
        )
    return (chosen[0], chosen[-1])


def _json_schema_file(path: str) -> Dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as file:
            schema = json.load(file)
    except (OSError, ValueError) as error:
        raise argparse.ArgumentTypeError(
            f"cannot read a JSON schema from {path!r}: {error}"
        ) from None
    if not isinstance(schema, dict):
        raise argparse.ArgumentTypeError(f"{path!r} holds no JSON object, so no JSON schema")
    return schema


def _json_object(text: str) -> Dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"must be a JSON object, not {text!r} ({error})") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(
            f"must be a JSON object like '{{\"top_k\": 40}}', not {text!r}"
        )
    return value


def _positive_float(text: str) -> float:
    value = _non_negative_float(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"must be a number above 0, not {text!r}")
    return value


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):  # NaN fails both comparisons
        raise argparse.ArgumentTypeError(f"must be a finite number, 0 or more, not {text!r}")
    return value


def _positive(text: str) -> int:
    value = _non_negative(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {text!r}")
    return value


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, not {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {text!r}")
    return value


def _devices(text: str) -> List[str]:
    devices = [device.strip() for device in text.split(",") if device.strip()]
    if not devices:
        raise argparse.ArgumentTypeError(f"must list GPUs such as 0,1, not {text!r}")
    return devices


if __name__ == "__main__":
    sys.exit(main())
