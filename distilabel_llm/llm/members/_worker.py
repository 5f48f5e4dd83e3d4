"""The child side of `ProcessLLM`: load the model once, then serve requests in order.

The parent runs `main` in a fresh interpreter (`python -c '...main()' FD`)
so that neither the parent's threads nor its `__main__` module come along, then talks to it over
the socket `FD` with pickled tuples:

    parent -> child   (INIT, sys_path, env, cloudpickled (load_llm_fn, task))
                      (GENERATE, request_id, inputs, num_generations, generation_kwargs)
                      (CANCEL, request_id)      drop the request if it has not started
                      (STOP,)                   finish what is queued, then exit
    child -> parent   (READY, model_name, supported_generation_kwargs, uses_gpu)
                      (LOAD_FAILED, traceback_text)
                      (RESULTS, [(request_id, rows, error), ...])

`error` is None or `(pickled exception or None, type name, message, traceback text)`.
Requests queued together are served by one `generate` call when they ask for the same number
of generations with the same settings (their rows' `generation_offset`s may differ: they are
merged into one list), which lets a backend batch them and amortises the bridge's cost
(`coalesce` and `run_group`, which `RayLLM`'s actor shares).
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
from typing import Any, Dict, List, Optional, Set, Tuple

from distilabel_llm.llm.core.settings import OFFSET, row_offsets, without_offset

INIT, GENERATE, CANCEL, STOP = "init", "generate", "cancel", "stop"
READY, LOAD_FAILED, RESULTS = "ready", "load_failed", "results"

# Requests are merged into one `generate` call up to this many rows, so that a backend batching
# the call (a GPU model) is never handed an unbounded batch.
_MAX_COALESCED_ROWS = 64

# Offline batch jobs run on the provider, and their ids live in the LLM that sent them: in a
# process, an actor or a pool, a stopped job's ids would be lost and a rerun would pay again.
OFFLINE_ELSEWHERE = (
    "{name} sends offline batch jobs (use_offline_batch_generation=True), which run on the "
    "provider, not in a process, an actor or a pool: give it to Pipeline(generator=...) or "
    "call its generate() directly, so that an unfinished job's ids are kept for the rerun."
)

# How often the child checks that its parent is still alive.
_PARENT_CHECK_SECONDS = 0.25

ErrorPayload = Tuple[Optional[bytes], str, str, str]
# (request_id, inputs, num_generations, generation_kwargs)
Request = Tuple[int, List[Dict[str, Any]], int, Dict[str, Any]]


def dumps(message: Any) -> bytes:
    return pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)


def error_payload(error: BaseException) -> ErrorPayload:
    """Describes `error` for the parent, with the exception itself when it pickles."""
    try:
        pickled: Optional[bytes] = dumps(error)
        pickle.loads(pickled)
    except Exception:
        pickled = None
    text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    return pickled, type(error).__qualname__, str(error), text


def load_llm(payload: bytes) -> Any:
    """Builds the LLM from the cloudpickled `(load_llm_fn, task)`, checking what it returns,
    and loads its model: a model that loads on first use counts as part of the load."""
    import cloudpickle

    from distilabel_llm.llm.core.llm import LLM

    load_llm_fn, task = cloudpickle.loads(payload)
    llm = load_llm_fn(task)
    if not isinstance(llm, LLM):
        raise TypeError(
            f"`load_llm_fn` must return a distilabel_llm `LLM`, but it returned "
            f"{type(llm).__qualname__}."
        )
    if getattr(llm, "use_offline_batch_generation", False):
        raise ValueError(OFFLINE_ELSEWHERE.format(name=type(llm).__qualname__))
    llm.load()
    return llm


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
        model_name = llm.model_name
    except BaseException:
        conn.send_bytes(dumps((LOAD_FAILED, traceback.format_exc())))
        return
    conn.send_bytes(
        dumps((READY, model_name, tuple(llm.supported_generation_kwargs), bool(llm.uses_gpu)))
    )

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
        requests: List[Request] = []
        for message in messages:
            if message[0] == GENERATE and message[1] not in cancelled:
                requests.append(message[1:])
            cancelled.discard(message[1] if len(message) > 1 else None)
        if requests:
            results = [
                (request_id, rows, None if error is None else error_payload(error))
                for group in coalesce(requests)
                for request_id, rows, error in run_group(llm, group)
            ]
            conn.send_bytes(_dump_results(results))
        if messages[-1][0] == STOP:
            return


def coalesce(requests: List[Request]) -> List[List[Request]]:
    """Groups consecutive requests with the same `num_generations` and settings (but for
    their offsets), up to a row budget."""
    groups: List[List[Request]] = []
    rows = 0
    for request in requests:
        group = groups[-1] if groups else None
        if (
            group
            and group[-1][2] == request[2]
            and _same_settings(group[-1][3], request[3])
            and rows + len(request[1]) <= _MAX_COALESCED_ROWS
        ):
            group.append(request)
            rows += len(request[1])
        else:
            groups.append([request])
            rows = len(request[1])
    return groups


def run_group(llm: Any, group: List[Request]) -> List[Tuple[int, Any, Optional[Exception]]]:
    """Serves a group with one `generate` call; on failure, each request alone to isolate it.

    Returns:
        `(request_id, rows, None)` or `(request_id, None, error)` per request, in order.
    """
    if len(group) > 1:
        try:
            rows = _generate(
                llm,
                [row for _, inputs, _, _ in group for row in inputs],
                group[0][2],
                _merged_settings(group),
            )
        except Exception:
            return [result for request in group for result in run_group(llm, [request])]
        results: List[Tuple[int, Any, Optional[Exception]]] = []
        start = 0
        for request_id, inputs, _, _ in group:
            results.append((request_id, rows[start : start + len(inputs)], None))
            start += len(inputs)
        return results
    request_id, inputs, num_generations, settings = group[0]
    try:
        return [(request_id, _generate(llm, inputs, num_generations, settings), None)]
    except Exception as error:
        return [(request_id, None, error)]


def _same_settings(a: Dict[str, Any], b: Dict[str, Any]) -> bool:
    """Whether two calls' settings agree but for their offsets."""
    if OFFSET not in a and OFFSET not in b:
        return a == b
    return without_offset(a) == without_offset(b)


def _merged_settings(group: List[Request]) -> Dict[str, Any]:
    """The settings of one call serving `group`: theirs, with their rows' offsets in a list."""
    settings = without_offset(group[0][3])
    if any(OFFSET in request[3] for request in group):
        settings[OFFSET] = [
            offset
            for _, inputs, _, request_settings in group
            for offset in row_offsets(request_settings, len(inputs))
        ]
    return settings


def _generate(
    llm: Any, inputs: List[Dict[str, Any]], num_generations: int, settings: Dict[str, Any]
) -> Any:
    if settings:
        result = llm.generate(inputs, num_generations=num_generations, generation_kwargs=settings)
    else:  # an LLM whose `generate` predates settings still works
        result = llm.generate(inputs, num_generations=num_generations)
    return result.result() if llm.return_futures else result


def _dump_results(results: List[Tuple[int, Any, Optional[ErrorPayload]]]) -> bytes:
    try:
        return dumps((RESULTS, results))
    except Exception:
        pass
    safe = []
    for request_id, rows, error in results:
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
