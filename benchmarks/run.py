"""Run every benchmark and print one summary table: ours, the ideal or raw backend, legacy.

    python -m benchmarks [--quick] [--only NAME,...] [--json out.json] [--markdown out.md]
                         [--legacy-setup]

Each benchmark module (`futures`, `threads`, `process`, `pool`, `streaming`, `backends`,
`startup`, `memory`, `scaling`, `e2e`, `sampling`, `structured`, `batching`, `ray_members`,
`rate_limits`, `api_pipeline`) runs in this process in turn; its rows become summary rows: our
figure (median of several runs, with min and max), the ideal or the raw backend doing the same
work with its ratio taken run by run, and legacy `distilabel==0.6.0`'s figure where it can run
the same workload (in its own venv; `--legacy-setup` creates `<repo>/.venv-legacy`). A benchmark
that cannot run (a missing extra, an error) gets a row saying why; the exit status is still 0.
`--quick` fits in about 3 minutes on a 2-core machine, the full run in about 9.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: import from the repository, not benchmarks/
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import argparse
import datetime
import importlib
import json
import os
import platform
import subprocess
import time
import traceback
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Dict, Optional, Sequence

from rich.console import Console

from benchmarks._adapters import to_summary
from benchmarks._legacy import ensure_legacy_venv, legacy_versions
from benchmarks._summary import COLUMNS, cells, markdown_table, skipped_row
from benchmarks._table import print_table

__all__ = ["BENCHMARKS", "git_commit", "machine", "main", "run_all"]

BENCHMARKS = (
    "futures",
    "threads",
    "process",
    "pool",
    "streaming",
    "backends",
    "startup",
    "memory",
    "scaling",
    "e2e",
    "sampling",
    "structured",
    "batching",
    "ray_members",
    "rate_limits",
    "api_pipeline",
)


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(package: str) -> Optional[str]:
    try:
        return version(package)
    except PackageNotFoundError:
        return None


def machine() -> Dict[str, Any]:
    """What the figures were measured on."""
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": _version("torch"),
        "transformers": _version("transformers"),
        "llama_cpp_python": _version("llama-cpp-python"),
        "distilabel_llm": _version("distilabel_llm"),
        "load_average_at_start": list(os.getloadavg()),
    }


def git_commit() -> Optional[str]:
    """The repository's commit, with `-dirty` when the tree has changes; None outside git."""
    root = Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return f"{commit}-dirty" if changed else commit


def _run_one(name: str, quick: bool) -> Dict[str, Any]:
    """Runs benchmark `name`; its raw rows, summary rows and seconds, or why it was skipped."""
    start = time.perf_counter()
    try:
        module = importlib.import_module(f"benchmarks.{name}")
        rows = module.run(quick)
        summary = to_summary(name, rows)
    except Exception as error:  # a broken benchmark must not hide the others' figures
        traceback.print_exc(file=sys.stderr)
        reason = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
        rows, summary = [], [skipped_row(name, reason[:160])]
    return {"seconds": time.perf_counter() - start, "rows": rows, "summary": summary}


def run_all(names: Sequence[str], quick: bool) -> Dict[str, Dict[str, Any]]:
    """Runs the named benchmarks in order, saying on stderr how long each took."""
    results: Dict[str, Dict[str, Any]] = {}
    for index, name in enumerate(names, 1):
        print(f"[{index}/{len(names)}] {name} ...", file=sys.stderr, flush=True)
        results[name] = _run_one(name, quick)
        print(
            f"[{index}/{len(names)}] {name}: {results[name]['seconds']:.1f} s",
            file=sys.stderr,
            flush=True,
        )
    return results


def _caption(info: Dict[str, Any], quick: bool, seconds: float) -> str:
    return (
        f"Measured {info['date']} on {info['machine']['cpu']} ({info['machine']['cores']} cores), "
        f"Python {info['machine']['python']}, torch {info['machine']['torch']}; "
        f"{'quick' if quick else 'full'} run in {seconds:.0f} s, load average at start "
        f"{info['machine']['load_average_at_start'][0]:.1f}. Figures: median (min..max) of the "
        "runs. Ratios are ours ÷ reference, taken run by run in the same process where both were "
        "timed side by side; legacy distilabel 0.6.0 runs in its own venv (ratio of medians). "
        f"Reproduce: `python -m benchmarks{' --quick' if quick else ''}`."
    )


def _parse(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--quick", action="store_true", help="smaller runs (about 3 minutes)")
    parser.add_argument("--json", metavar="PATH", help="write the results as JSON to PATH")
    parser.add_argument("--markdown", metavar="PATH", help="write the table as markdown to PATH")
    parser.add_argument(
        "--legacy-setup",
        action="store_true",
        help="create <repo>/.venv-legacy with distilabel 0.6.0 first, if no legacy venv works",
    )
    parser.add_argument(
        "--only", metavar="NAME,...", help=f"run only these, of: {', '.join(BENCHMARKS)}"
    )
    args = parser.parse_args(argv)
    if args.only:
        names = [name.strip() for name in args.only.split(",") if name.strip()]
        unknown = sorted(set(names) - set(BENCHMARKS))
        if unknown:
            parser.error(f"unknown benchmark(s) {unknown}; choose from {', '.join(BENCHMARKS)}")
        args.only = names
    return args


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parse(argv)
    # Model processes inherit this: transformers' weight-loading bars would break up the log.
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    if args.legacy_setup:
        ensure_legacy_venv()
    names = args.only or list(BENCHMARKS)
    info: Dict[str, Any] = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "mode": "quick" if args.quick else "full",
        "commit": git_commit(),
        "command": "python -m benchmarks"
        + (" --quick" if args.quick else "")
        + (f" --only {','.join(names)}" if args.only else ""),
        "machine": machine(),
        "legacy": legacy_versions(),
    }
    start = time.perf_counter()
    results = run_all(names, args.quick)
    seconds = time.perf_counter() - start
    info["machine"]["load_average_at_end"] = list(os.getloadavg())
    summary = [row for name in names for row in results[name]["summary"]]
    caption = _caption(info, args.quick, seconds)
    console = Console()
    if not console.is_terminal:  # a log: wide enough that each row stays on one line or two
        console = Console(width=200)
    table_rows = [cells(row) for row in summary]
    print_table("distilabel_llm benchmarks", COLUMNS, table_rows, caption, console=console)
    if args.markdown:
        Path(args.markdown).write_text(
            f"{markdown_table(summary)}\n\n{caption}\n", encoding="utf-8"
        )
    if args.json:
        info.update(
            seconds=seconds,
            summary=summary,
            benchmarks={
                name: {"seconds": result["seconds"], "rows": result["rows"]}
                for name, result in results.items()
            },
        )
        Path(args.json).write_text(json.dumps(info, indent=2, default=str), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
