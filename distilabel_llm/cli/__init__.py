"""The `distilabel-llm` command: `demo`, `generate` and `build-tiny-models`.

`parser` declares the commands and their flags, `checks` refuses flags that do not go
together, and one module runs each command: `demo`, `generate` (with `options`, the flags
turned into what the models take) and `build_tiny_models`.
"""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any, List, Optional

from rich.console import Console
from rich.markup import escape

from distilabel_llm.cli.checks import usage_problem
from distilabel_llm.cli.exit_codes import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_TERMINATED
from distilabel_llm.cli.parser import build_parser
from distilabel_llm.errors import DistilabelLLMError, ModelError

__all__ = ["main"]


def main(argv: Optional[List[str]] = None) -> int:
    """Runs the command line; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    problem = usage_problem(args)
    if problem:
        parser.error(problem)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    console = Console()
    terminated: List[int] = []
    previous = _stop_on_sigterm(terminated)
    try:
        return int(args.run(args, console) or 0)
    except KeyboardInterrupt as stopped:
        message = str(stopped) or "Stopped."
        if "resume" not in message:
            message += " Run the same command again to resume."
        # soft_wrap: the checkpoint's path in the message must stay copyable off a terminal.
        Console(stderr=True).print(message, highlight=False, markup=False, soft_wrap=True)
        return EXIT_TERMINATED if terminated else EXIT_INTERRUPTED
    except (DistilabelLLMError, ModelError, ImportError, OSError) as error:
        # soft_wrap: a command or a path in the message must stay copyable off a terminal.
        Console(stderr=True).print(
            f"[bold red]error:[/bold red] {escape(str(error))}", highlight=False, soft_wrap=True
        )
        return EXIT_ERROR
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _stop_on_sigterm(terminated: List[int]) -> Any:
    """Makes SIGTERM (`kill`, a scheduler's stop) stop a job as Ctrl-C does: the rows done are
    saved and the command says how to resume. Returns the handler it replaced; None where
    signals cannot be handled here (not the main thread)."""

    def stop(signum: int, frame: Any) -> None:
        terminated.append(signum)
        raise KeyboardInterrupt

    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, stop)
