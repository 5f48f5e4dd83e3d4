"""Starting, reaping and describing the child process behind a `ProcessLLM`."""

from __future__ import annotations

import multiprocessing
import os
import pickle
import signal
import subprocess
import sys
from multiprocessing.connection import Connection
from typing import Any, Dict, List, Optional, Tuple

from distilabel_llm.errors import ProcessLLMError
from distilabel_llm.llm.core.settings import NO_SETTINGS
from distilabel_llm.llm.members import _worker
from distilabel_llm.llm.members._protocol import Call, Reply

# `-c` rather than `-m`: this package already imported `_worker`, and runpy warns about that.
_CHILD_COMMAND = f"from {_worker.__name__} import main; main()"


class ChildProcess:
    """One incarnation of the child process and the parent's end of its socket."""

    def __init__(self, process: Any, conn: Connection) -> None:
        self.process = process
        self.conn = conn
        self.pid: int = process.pid

    @classmethod
    def start(cls, start_method: str, env: Dict[str, str], init_message: bytes) -> ChildProcess:
        """Starts a child and sends it `init_message`.

        Args:
            start_method: "spawn" for a fresh interpreter, "fork" for a forked copy of this one.
            env: variables added to the child's environment.
            init_message: the pickled INIT message the worker reads first.
        """
        parent_conn, child_conn = multiprocessing.Pipe(duplex=True)
        if start_method == "fork":
            process: Any = multiprocessing.get_context("fork").Process(
                target=_worker.serve, args=(child_conn,), name="ProcessLLM-child"
            )
            process.start()
        else:
            process = subprocess.Popen(
                [sys.executable, "-c", _CHILD_COMMAND, str(child_conn.fileno())],
                pass_fds=(child_conn.fileno(),),
                env={**os.environ, **env},
                stdin=subprocess.DEVNULL,
            )
        child_conn.close()
        parent_conn.send_bytes(init_message)
        return cls(process, parent_conn)

    def exit_code(self, timeout: float) -> Optional[int]:
        """Waits up to `timeout` seconds for the child to exit; its exit code, or None."""
        if isinstance(self.process, subprocess.Popen):
            try:
                return self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                return None
        self.process.join(timeout)
        return self.process.exitcode

    def kill(self) -> int:
        """Kills the child; returns its exit code."""
        self.process.kill()
        code = self.exit_code(5.0)
        return -signal.SIGKILL if code is None else code


def describe_exit(code: Optional[int]) -> str:
    """ "exit code 3", or "exit code -9 (killed by SIGKILL)"."""
    if code is not None and code < 0:
        try:
            return f"exit code {code} (killed by {signal.Signals(-code).name})"
        except ValueError:
            pass
    return f"exit code {code}"


def error_summary(traceback_text: str) -> str:
    """The `Type: first line of the message` of the exception a traceback ends with."""
    lines = traceback_text.strip().splitlines()
    frames = [i for i, line in enumerate(lines) if line.startswith("  File ")]
    start = frames[-1] + 1 if frames else 0
    for line in lines[start:]:
        if line and not line[0].isspace():
            return line
    return lines[-1] if lines else "no traceback"


def rebuild_error(error: _worker.ErrorPayload) -> BaseException:
    """The child's exception, with its traceback as a note, or a `ProcessLLMError` saying it."""
    pickled, type_name, message, text = error
    if pickled is not None:
        try:
            exception: BaseException = pickle.loads(pickled)
        except Exception:
            pass
        else:
            if hasattr(exception, "add_note"):
                exception.add_note(f"Traceback in the child process:\n{text}")
            return exception
    return ProcessLLMError(f"{type_name}: {message}", child_traceback=text)


def encode_call(call: Call) -> bytes:
    """A `GENERATE` message for `call` (None for settings that set nothing)."""
    request = call.request
    settings = None if request.settings is NO_SETTINGS else request.settings
    return _worker.dumps(
        (_worker.GENERATE, call.request_id, request.inputs, request.num_generations, settings)
    )


def decode_replies(payload: List[Tuple[int, Any, Optional[_worker.ErrorPayload]]]) -> List[Reply]:
    """The replies of a `RESULTS` message, each error rebuilt as an exception."""
    return [
        Reply(request_id, rows, None if error is None else rebuild_error(error))
        for request_id, rows, error in payload
    ]
