"""The child side of `ProcessLLM`: load the model once, then serve requests in order.

The parent runs `main` in a fresh interpreter (`python -c '...main()' FD`)
so that neither the parent's threads nor its `__main__` module come along, then talks to it over
the socket `FD` with pickled tuples:

    parent -> child   (INIT, sys_path, env, cloudpickled (load_llm_fn, task))
                      (GENERATE, request_id, inputs, num_generations, settings)   a Call
                      (CANCEL, request_id)      drop the request if it has not started
                      (STOP,)                   finish what is queued, then exit
    child -> parent   (READY, Readiness)
                      (RESULTS, [(request_id, rows, error), ...])                 Replies

`Call` and `Reply` cross as plain tuples (`_child.encode_call`, `decode_call`...): pickling a
named tuple costs a Python call per record, a fifth of a no-op model's round trip. A reply's
`error` is None or an `ErrorPayload`: `(pickled exception or None, type name, message,
traceback text)`. Calls queued together are served as `serve_calls` decides, as in `RayLLM`'s
actor.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import queue
import signal
import sys
import threading
import time
import traceback
from multiprocessing.connection import Connection
from typing import Any, List, Optional, Set, Tuple

from distilabel_llm.llm.core.settings import NO_SETTINGS, GenerationRequest
from distilabel_llm.llm.members._protocol import Call, Readiness, load_llm, serve_calls

INIT, GENERATE, CANCEL, STOP = "init", "generate", "cancel", "stop"
READY, RESULTS = "ready", "results"

# How often the child checks that its parent is still alive.
_PARENT_CHECK_SECONDS = 0.25

ErrorPayload = Tuple[Optional[bytes], str, str, str]


def dumps(message: Any) -> bytes:
    return pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)


def decode_call(message: Tuple[Any, ...]) -> Call:
    """The call of a `GENERATE` message."""
    _, request_id, inputs, num_generations, settings = message
    return Call(
        request_id,
        GenerationRequest(inputs, num_generations, NO_SETTINGS if settings is None else settings),
    )


def error_payload(error: BaseException) -> ErrorPayload:
    """Describes `error` for the parent, with the exception itself when it pickles."""
    try:
        pickled: Optional[bytes] = dumps(error)
        pickle.loads(pickled)
    except Exception:
        pickled = None
    text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    return pickled, type(error).__qualname__, str(error), text


# What writing to or reading from the parent raises once it is gone (killed, say).
_PARENT_GONE = (BrokenPipeError, ConnectionResetError, EOFError)


def serve(conn: Connection) -> None:
    """Runs the child: applies the parent's environment, loads the model, serves requests.

    A child whose parent is gone exits quietly: nobody wants what it would send, and a
    traceback per child would bury the parent's own message."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    # SIGTERM ends the child at once, without a traceback, even when a forked child inherited
    # a handler of the parent's program.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _exit_with_parent(os.getppid())
    with contextlib.suppress(*_PARENT_GONE):
        _serve(conn)


def _serve(conn: Connection) -> None:
    _, sys_path, env, payload = pickle.loads(conn.recv_bytes())
    os.environ.update(env)
    sys.path.extend(path for path in sys_path if path not in sys.path)
    try:
        llm = load_llm(payload)
        ready = Readiness(llm.model_name, tuple(llm.supported_generation_kwargs), llm.uses_gpu)
    except BaseException:
        conn.send_bytes(dumps((READY, Readiness(None, None, False, traceback.format_exc()))))
        return
    conn.send_bytes(dumps((READY, ready)))

    inbox: queue.SimpleQueue[Tuple[Any, ...]] = queue.SimpleQueue()
    cancelled: Set[int] = set()
    threading.Thread(target=_read, args=(conn, inbox, cancelled), daemon=True).start()
    try:
        _serve_requests(llm, conn, inbox, cancelled)
    finally:
        llm.close()


def _read(conn: Connection, inbox: queue.SimpleQueue[Tuple[Any, ...]], cancelled: Set[int]) -> None:
    """Moves messages from the socket to `inbox`, so requests queue while the model works."""
    while True:
        try:
            message = pickle.loads(conn.recv_bytes())
        except (EOFError, OSError):
            inbox.put((STOP,))  # the parent closed the socket, or is gone
            return
        if message[0] == CANCEL:
            cancelled.add(message[1])
        else:
            inbox.put(message)
        if message[0] == STOP:
            return


def _serve_requests(
    llm: Any, conn: Connection, inbox: queue.SimpleQueue[Tuple[Any, ...]], cancelled: Set[int]
) -> None:
    while True:
        messages = [inbox.get()]
        while messages[-1][0] != STOP:
            try:
                messages.append(inbox.get_nowait())
            except queue.Empty:
                break
        calls: List[Call] = []
        for message in messages:
            if message[0] == GENERATE and message[1] not in cancelled:
                calls.append(decode_call(message))
            elif message[0] == GENERATE:
                cancelled.discard(message[1])
        if calls:
            replies = [
                (reply.request_id, reply.rows, _payload(reply.error))
                for reply in serve_calls(llm, calls)
            ]
            conn.send_bytes(_dump_results(replies))
        if messages[-1][0] == STOP:
            return


def _payload(error: Optional[BaseException]) -> Optional[ErrorPayload]:
    return None if error is None else error_payload(error)


def _dump_results(replies: List[Tuple[int, Any, Optional[ErrorPayload]]]) -> bytes:
    try:
        return dumps((RESULTS, replies))
    except Exception:
        pass
    safe = []
    for request_id, rows, error in replies:
        try:
            dumps(rows)
        except Exception as pickling_error:
            rows, error = None, error_payload(pickling_error)
        safe.append((request_id, rows, error))
    return dumps((RESULTS, safe))


def _exit_with_parent(parent_pid: int) -> None:
    """Ends this process as soon as its parent is gone, so no model outlives its program."""

    def watch() -> None:
        while True:
            time.sleep(_PARENT_CHECK_SECONDS)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def main() -> None:
    serve(Connection(int(sys.argv[1])))


if __name__ == "__main__":
    main()
