"""`ProcessLLM`: an LLM loaded and served in a child process, with failures delivered, not hung on.

The parent keeps one socket to the child and a receiver thread per child. `generate` pickles a
request, sends it and returns a `Future`; the receiver resolves futures as results arrive, and
when the socket closes it reaps the child and fails (or, with `max_restarts`, re-sends) every
request still in flight, as CPython's `ProcessPoolExecutor` does for a broken pool.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import pickle
import sys
import threading
import time
from typing import (
    TYPE_CHECKING,
    Any,
    Deque,
    Dict,
    Iterator,
    List,
    Mapping,
    Optional,
    Tuple,
    Union,
)

from distilabel_llm.errors import ProcessLLMError
from distilabel_llm.llm.core.contract import LoadLLMFn
from distilabel_llm.llm.members import _worker
from distilabel_llm.llm.members._child import (
    ChildProcess,
    decode_replies,
    describe_exit,
    encode_call,
    error_summary,
)
from distilabel_llm.llm.members._protocol import Call, Readiness
from distilabel_llm.llm.members.remote import PendingCall, RemoteLLM
from distilabel_llm.utils.future_tools import settle
from distilabel_llm.utils.lifecycle import close_at_exit

if TYPE_CHECKING:
    from distilabel_llm.tasks.base import Task

__all__ = ["ProcessLLM"]

logger = logging.getLogger("distilabel_llm")

# How long the receiver waits on the socket before it checks deadlines and the child's health.
_POLL_SECONDS = 0.2
# How long a child that closed its socket, or was told to stop at once, gets before it is killed.
_REAP_SECONDS = 1.0
# How long a child gets to finish its queue and exit after `teardown`.
_STOP_SECONDS = 10.0
_START_METHODS = ("spawn", "fork")
# A request in flight at this many deaths of the child fails instead of being re-sent.
_MAX_CRASHES_PER_REQUEST = 2


class ProcessLLM(RemoteLLM):
    """Runs the LLM that `load_llm_fn` builds in a child process, and serves it to this one.

    The child loads the model once and serves `generate` requests in order until `teardown`.
    Many requests may be in flight; each `generate` returns a `Future` at once. Failures never
    hang the caller: a model that fails to load, a request that raises, a child that dies or a
    request that times out each fail the futures concerned with an error that says why.

    Args:
        task: the task the child's LLM uses; also available here as `task`.
        load_llm_fn: builds the LLM from the task, in the child. A lambda, a closure or a
            function from `__main__` all work: it is serialised with cloudpickle and the
            child is a fresh interpreter, so scripts need no `if __name__ == "__main__":`.
        env: environment variables set in the child before it starts, e.g.
            `{"CUDA_VISIBLE_DEVICES": "1"}` to pin the model to one GPU.
        start_method: `"spawn"` (the default): a fresh interpreter; `"fork"`: faster to
            start, but unsafe once this process runs threads or has initialised CUDA.
        request_timeout: seconds a request may wait for its answer, counted from `generate`;
            past that its future fails with `TimeoutError`.
        max_restarts: times a child that dies is restarted, its in-flight requests re-sent,
            before those requests fail. A request in flight at two deaths is not re-sent
            again: it fails with `ProcessLLMError`, so one bad request cannot use up every
            restart.
        load_timeout: seconds each load of the model may take; past that the child is
            killed and the load fails like any other load failure.
    """

    def __init__(
        self,
        task: Task,
        load_llm_fn: LoadLLMFn,
        *,
        env: Optional[Mapping[str, Union[str, int]]] = None,
        start_method: Optional[str] = None,
        request_timeout: Optional[float] = None,
        max_restarts: int = 0,
        load_timeout: Optional[float] = None,
    ) -> None:
        if start_method not in (None, *_START_METHODS):
            raise ValueError(
                f"`start_method` must be one of {_START_METHODS} or None, not {start_method!r}."
            )
        if request_timeout is not None and request_timeout <= 0:
            raise ValueError(f"`request_timeout` must be positive, not {request_timeout!r}.")
        super().__init__(task, load_llm_fn, "the child process", max_restarts, load_timeout)
        self.env = _check_env(env)
        self.start_method = start_method or "spawn"
        self.request_timeout = request_timeout
        init = (_worker.INIT, list(sys.path), self.env, self._payload)
        self._init_message = _worker.dumps(init)
        self._deadlines: Deque[Tuple[float, int]] = collections.deque()
        self._restarts_left = max_restarts
        self._stopping = False
        self._receivers: List[threading.Thread] = []
        self._load_deadline: Optional[float] = None  # while the current child loads
        self._child = self._start_child()
        close_at_exit(self, "_stop_at_exit")

    @property
    def pid(self) -> int:
        """The process id of the current child."""
        return self._child.pid

    @property
    def location(self) -> Optional[str]:
        """Where the model computes, once it has loaded: `"CPU"`, or `"GPU 1"` (the GPU(s)
        `env` pins the child to); None while loading."""
        if self._uses_gpu is None:
            return None
        if not self._uses_gpu:
            return "CPU"
        device = self.env.get("CUDA_VISIBLE_DEVICES")
        return "GPU" if device is None else f"GPU {device}"

    def _encode(self, call: Call) -> bytes:
        try:
            return encode_call(call)
        except Exception as error:
            raise TypeError(
                f"The inputs must be picklable to reach the child process: {error}"
            ) from error

    def _send(self, pending: PendingCall, message: bytes) -> None:
        if self.request_timeout is not None:
            deadline = time.monotonic() + self.request_timeout
            self._deadlines.append((deadline, pending.call.request_id))
        self._send_bytes(message)

    def _cancel(self, request_id: int) -> None:
        self._send_bytes(_worker.dumps((_worker.CANCEL, request_id)))

    def _stop_model(self, wait: bool) -> None:
        with self._lock:
            self._stopping = True
            child = self._child
            self._send_bytes(_worker.dumps((_worker.STOP,)))
        if child.exit_code(_STOP_SECONDS if wait else _REAP_SECONDS) is None:
            child.kill()
        for receiver in self._receivers:
            if receiver is not threading.current_thread():
                receiver.join(5.0)
        child.conn.close()

    def _error(self, message: str) -> ProcessLLMError:
        return ProcessLLMError(message)

    def __rich_repr__(self) -> Iterator[Tuple[str, Any]]:
        yield from super().__rich_repr__()
        yield "pid", self._child.pid
        if self.env:
            yield "env", self.env

    # Child lifecycle.

    def _start_child(self) -> ChildProcess:
        child = ChildProcess.start(self.start_method, self.env, self._init_message)
        if self.load_timeout is not None:
            self._load_deadline = time.monotonic() + self.load_timeout
        receiver = threading.Thread(
            target=self._receive, args=(child,), name=f"ProcessLLM-{child.pid}", daemon=True
        )
        self._receivers = [thread for thread in self._receivers if thread.is_alive()]
        self._receivers.append(receiver)
        receiver.start()
        return child

    def _send_bytes(self, message: bytes) -> None:
        """Sends to the current child; a dead child is left to its receiver to handle."""
        with contextlib.suppress(OSError, ValueError):
            self._child.conn.send_bytes(message)

    def _receive(self, child: ChildProcess) -> None:
        """The receiver thread: resolves futures until the child's socket closes."""
        conn = child.conn
        while True:
            try:
                if not conn.poll(self._poll_timeout()):
                    self._expire_deadlines()
                    self._check_load_deadline(child)
                    if child.exit_code(0) is not None and not conn.poll(0):
                        break
                    continue
                message = pickle.loads(conn.recv_bytes())
            except (EOFError, OSError):
                break
            kind, payload = message
            if kind == _worker.RESULTS:
                self._deliver(decode_replies(payload))
            elif kind == _worker.READY:
                self._on_ready(payload)
            if self._deadlines:
                self._expire_deadlines()
        self._on_child_exit(child)

    def _on_ready(self, readiness: Readiness) -> None:
        self._load_deadline = None
        if readiness.load_error is None:
            self._ready_with(readiness)
            return
        self._fail_for_good(
            ProcessLLMError(
                f"`load_llm_fn` failed in the child process "
                f"({error_summary(readiness.load_error)}), so this ProcessLLM cannot generate.",
                child_traceback=readiness.load_error,
            )
        )

    def _on_child_exit(self, child: ChildProcess) -> None:
        code = child.exit_code(_REAP_SECONDS)
        if code is None:
            code = child.kill()
        with self._lock:
            if child is not self._child or self._failure is not None:
                return
            if self._stopping and not self._pending:
                return
            restart = self._restarts_left > 0
            in_flight = len(self._pending)
            if restart:
                self._restarts_left -= 1
                given_up = self._count_crash()
                logger.warning(
                    "The child process of %r exited with %s; restarting it (%d restart(s) "
                    "left) and re-sending %d request(s).",
                    self,
                    describe_exit(code),
                    self._restarts_left,
                    len(self._pending),
                )
                self._child = self._start_child()
                for pending in self._pending.values():
                    self._send_bytes(self._encode(pending.call))
                if self._stopping:
                    self._send_bytes(_worker.dumps((_worker.STOP,)))
        if restart:
            # One error for all: a pool counts the requests failed by one death as one crash.
            crashed = ProcessLLMError(
                f"The child process of {self!r} died twice ({describe_exit(code)} the second "
                "time) while this request was in flight, so it is not sent again; the child "
                "was restarted for the other requests.",
                exit_code=code,
                in_flight=in_flight,
            )
            for pending in given_up:
                settle(pending.future, exception=crashed)
            return
        self._fail_for_good(
            ProcessLLMError(
                f"The child process of {self!r} exited with {describe_exit(code)} while "
                f"{in_flight} request(s) were in flight. Look above for what it printed; if "
                "it ran out of memory, lower the batch size.",
                exit_code=code,
                in_flight=in_flight,
            )
        )

    def _count_crash(self) -> List[PendingCall]:
        """Counts a death against each call in flight; removes and returns those at two."""
        given_up = []
        for request_id, pending in list(self._pending.items()):
            pending.crashes += 1
            if pending.crashes >= _MAX_CRASHES_PER_REQUEST:
                given_up.append(self._pending.pop(request_id))
        return given_up

    def _check_load_deadline(self, child: ChildProcess) -> None:
        deadline = self._load_deadline
        if deadline is None or child is not self._child or time.monotonic() < deadline:
            return
        self._load_deadline = None
        self._fail_for_good(self._load_timed_out())
        child.kill()

    # Requests.

    def _poll_timeout(self) -> float:
        try:
            deadline = self._deadlines[0][0]
        except IndexError:
            return _POLL_SECONDS
        return min(_POLL_SECONDS, max(0.0, deadline - time.monotonic()))

    def _expire_deadlines(self) -> None:
        now = time.monotonic()
        expired = []
        with self._lock:
            while self._deadlines and (
                self._deadlines[0][1] not in self._pending or self._deadlines[0][0] <= now
            ):
                _, request_id = self._deadlines.popleft()
                pending = self._pending.pop(request_id, None)
                if pending is not None:
                    expired.append(pending)
        for pending in expired:
            settle(
                pending.future,
                exception=TimeoutError(
                    f"No answer from the child process of {self!r} within "
                    f"request_timeout={self.request_timeout}s."
                ),
            )


def _check_env(env: Optional[Mapping[str, Union[str, int]]]) -> Dict[str, str]:
    if env is None:
        return {}
    checked = {}
    for name, value in env.items():
        if not isinstance(name, str) or not isinstance(value, (str, int)):
            raise TypeError(f"`env` maps variable names to strings, but has {name!r}: {value!r}.")
        checked[name] = str(value)
    return checked
