"""The command line's argparse parser: the commands, their flags and flag groups, and the
types that check each flag's value."""

from __future__ import annotations

import argparse
import json
from typing import Any, Dict, List, Tuple

import distilabel_llm
from distilabel_llm.cli import build_tiny_models, demo, generate
from distilabel_llm.pipeline.backends import BACKENDS


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="distilabel-llm",
        description="LLM text generation at scale on local hardware and APIs.",
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {distilabel_llm.__version__}"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_demo(commands)
    _add_generate(commands)
    _add_build_tiny_models(commands)
    return parser


def _add_demo(commands: Any) -> None:
    demo_parser = commands.add_parser(
        "demo",
        help="run a short job on tiny local models (no key, no download)",
        description="Builds tiny local models (cached), runs a pool of a llama.cpp and a "
        "transformers process over built-in prompts, writes a JSONL file and a summary.",
    )
    demo_parser.add_argument("--output-dir", default="demo-output", help="default: %(default)s")
    demo_parser.add_argument("--rows", type=_positive, default=32, help="default: %(default)s")
    demo_parser.add_argument(
        "--max-new-tokens", type=_positive, default=24, help="default: %(default)s"
    )
    demo_parser.add_argument("--cache-dir", help="where the tiny models are kept")
    demo_parser.add_argument(
        "--backends",
        type=_demo_backends,
        default=("llama-cpp", "transformers"),
        help="the pool's two members: llama-cpp,transformers (default), or one backend for "
        "two replicas of it; 'transformers' needs no compiler (pip install "
        "'distilabel_llm[transformers,kit]')",
    )
    demo_parser.set_defaults(run=demo.run)


def _add_generate(commands: Any) -> None:
    parser = commands.add_parser(
        "generate",
        help="generate (and label) for every row of a JSONL file, resumably",
        description="Generates for every row of --input (one JSON object with an 'input' "
        "field per line) and writes each finished row to --output at once. Re-running the "
        "same command after a stop or a crash generates only the rows still missing, and "
        "retries those saved with an error. Exit codes: 0 every row done; 1 the job could not "
        "run or stopped (a model that cannot load, a rejected API key); 3 the job ran to its "
        "end but some rows failed; 4 --max-budget stopped the job, the rows not sent left "
        "pending in --output (run again with a larger --max-budget to resume); 130 "
        "interrupted (Ctrl-C), 143 terminated (SIGTERM), the rows done saved either way.",
    )
    parser.add_argument("--input", required=True, help="JSONL file of input rows")
    parser.add_argument(
        "--output",
        required=True,
        help="JSONL file of results, also the checkpoint a re-run resumes from (created, with "
        "its folders, if missing; <output>.job.json records the job's settings)",
    )
    parser.add_argument("--backend", required=True, choices=BACKENDS)
    parser.add_argument("--model", required=True, help="GGUF file, model directory or name")
    _model_flags(parser)
    parser.add_argument(
        "--num-generations", type=_positive, default=1, help="outputs per row (default: 1)"
    )
    parser.add_argument(
        "--batch-size",
        type=_positive,
        default=16,
        help="rows per model call; a crash loses only the batches in flight, which the next run "
        "redoes (default: 16)",
    )
    _settings_flags(parser)
    _task_flags(parser)
    _cost_flags(parser)
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    parser.set_defaults(run=generate.run)


def _model_flags(generate_parser: argparse.ArgumentParser) -> None:
    """Where the models run, and how requests reach them."""
    placement = generate_parser.add_mutually_exclusive_group()
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
    generate_parser.add_argument(
        "--ray-gpus",
        type=_non_negative_float,
        default=0.0,
        help="GPUs per Ray replica (default: 0)",
    )
    generate_parser.add_argument(
        "--threads", type=_positive, help="CPU threads per model process (local backends)"
    )
    generate_parser.add_argument(
        "--max-concurrency",
        type=_positive,
        help="requests in flight at once to the server (openai backend; default: 1, one "
        "after another)",
    )
    for unit in ("requests", "tokens"):
        generate_parser.add_argument(
            f"--max-{unit}-per-minute",
            type=_positive,
            metavar="N",
            help=f"the provider's {unit} per minute: requests are paced to it rather than "
            "sent in bursts and bounced with 429s (openai backend; learnt from the server's "
            "x-ratelimit headers when it sends them)",
        )
    generate_parser.add_argument(
        "--continuous-batching",
        action="store_true",
        help="transformers models decode with continuous batching: a row starts as soon as "
        "another ends (transformers 5; best on a GPU)",
    )


def _settings_flags(generate_parser: argparse.ArgumentParser) -> None:
    settings = generate_parser.add_argument_group(
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


def _task_flags(generate_parser: argparse.ArgumentParser) -> None:
    """The tasks, the labeller's model, and the openai backend's server."""
    generate_parser.add_argument(
        "--task",
        choices=("text-generation", "self-instruct"),
        default="text-generation",
        help="what the generator does with each row's 'input' (default: %(default)s)",
    )
    generate_parser.add_argument(
        "--labeller",
        choices=("ultrafeedback", "judgelm"),
        help="rate each row's generations with this task",
    )
    generate_parser.add_argument("--labeller-backend", choices=BACKENDS, help="default: --backend")
    generate_parser.add_argument("--labeller-model", help="default: --model")
    generate_parser.add_argument("--base-url", help="OpenAI-compatible server URL (openai backend)")
    generate_parser.add_argument(
        "--api-key", default=None, help="API key (openai backend); default: $OPENAI_API_KEY"
    )


def _cost_flags(generate_parser: argparse.ArgumentParser) -> None:
    cost = generate_parser.add_argument_group(
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


def _add_build_tiny_models(commands: Any) -> None:
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
    build.set_defaults(run=build_tiny_models.run)


# The flags' types: each returns the checked value, or raises ArgumentTypeError, which the
# parser reports as a usage error naming the flag.


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
