"""`RemoteLLM`: an LLM whose model lives in another process, and the whole life of a call.

`ProcessLLM` and `RayLLM` keep only how a call crosses (a socket to a child, an actor method);
this base owns the rest: it registers each call, hands it to the transport, delivers the
answer (progress, pydantic instances for a structured output, the future) and fails every
call in flight when the model can no longer answer, which is how `LLMPool` knows a member is
lost. The shutdown sequence is shared too: `teardown()` waits for the calls in flight, and
`teardown(wait=False)` stops the model at once and fails them, whatever came before it, even
while another thread is still inside a waiting `teardown()`.
"""

from __future__ import annotations

import functools
import itertools
import threading
from concurrent.futures import Future
from concurrent.futures import wait as futures_wait
from typing import TYPE_CHECKING, Any, Dict, Iterator, Optional, Sequence, Tuple

import cloudpickle

from distilabel_llm.errors import DistilabelLLMError
from distilabel_llm.llm.core._callbacks import report_progress
from distilabel_llm.llm.core.contract import (
    BaseLLM,
    LoadLLMFn,
    MemberProgressCallback,
    Outputs,
    ProgressCallback,
)
from distilabel_llm.llm.core.settings import GenerationRequest
from distilabel_llm.llm.core.structured import with_models
from distilabel_llm.llm.members._protocol import Call, Readiness, Reply
from distilabel_llm.utils.future_tools import settle
from distilabel_llm.utils.lifecycle import forget_at_exit

if TYPE_CHECKING:
    from distilabel_llm.tasks.base import Task

__all__ = ["RemoteLLM"]


class PendingCall:
    """A call in flight: what its caller waits on, and what the transport needs to resend it."""

    __slots__ = ("call", "crashes", "future", "progress", "structured_model")

    def __init__(self, call: Call, progress: Optional[ProgressCallback]) -> None:
        self.call = call
        self.progress = progress
        self.structured_model = call.request.settings.structured_model
        self.future: Future[Outputs] = Future()
        self.crashes = 0  # times the model's process died while this was in flight


class RemoteLLM(BaseLLM):
    """The base of LLMs served from another process; subclasses start it and carry calls.

    Subclasses implement `_send(pending, message)` (hand a registered call to the model, as
    `_encode` made it), `_cancel`
    (tell the model a call is no longer wanted), `_stop_model(wait)` and `_error(message)`,
    and report back through `_ready_with`, `_deliver` and `_fail_for_good`.
    """

    def __init__(
        self,
        task: Task,
        load_llm_fn: LoadLLMFn,
        where: str,
        max_restarts: int = 0,
        load_timeout: Optional[float] = None,
    ) -> None:
        """Checks what every remote LLM takes, and serialises `(load_llm_fn, task)` for
        `where` the model loads ("the child process", "the Ray actor")."""
        if not callable(load_llm_fn):
            raise TypeError(f"`load_llm_fn` must be callable, not {type(load_llm_fn).__name__}.")
        if max_restarts < 0:
            raise ValueError(f"`max_restarts` must be 0 or more, not {max_restarts!r}.")
        if load_timeout is not None and not load_timeout > 0:
            raise ValueError(f"`load_timeout` must be a positive number, not {load_timeout!r}.")
        try:
            self._payload = cloudpickle.dumps((load_llm_fn, task))
        except Exception as error:
            raise TypeError(
                f"`load_llm_fn` and `task` must be serialisable with cloudpickle to reach "
                f"{where}, but serialising them failed: {error}"
            ) from error
        self.task = task
        self.max_restarts = max_restarts
        self.load_timeout = load_timeout
        self._lock = threading.Lock()
        self._ids = itertools.count()
        self._pending: Dict[int, PendingCall] = {}
        self._closed = False
        self._stopped = False  # the model's process is gone, after a teardown
        self._failure: Optional[DistilabelLLMError] = None
        self._model_name: Optional[str] = None
        # The settings the model takes, as it reported once loaded.
        self._supported_generation_kwargs: Optional[Tuple[str, ...]] = None
        self._uses_gpu: Optional[bool] = None
        self._ready = threading.Event()  # set once the model loaded, or never will

    @property
    def model_name(self) -> str:
        """The model's name, once it has loaded; waits for the load (see `wait_loaded`).

        Raises:
            DistilabelLLMError: why the model cannot be used (it failed to load, or the
                process serving it died first).
        """
        name = self.wait_loaded()
        assert name is not None
        return name

    @property
    def model_name_now(self) -> Optional[str]:
        """The model's name if it has loaded, else None; never waits."""
        return self._model_name

    def wait_loaded(self, timeout: Optional[float] = None) -> Optional[str]:
        """Waits up to `timeout` seconds for the model to load; its name, or None if still
        loading. `wait_loaded(0)` never blocks; `timeout=None` waits as long as the load takes
        (bounded by `load_timeout` when set).

        Raises:
            DistilabelLLMError: why the model cannot be used (it failed to load, or the
                process serving it died first).
        """
        if not self._ready.wait(timeout):
            return None
        if self._model_name is None:
            assert self._failure is not None
            raise self._failure
        return self._model_name

    @property
    def supported_generation_kwargs(self) -> Optional[Tuple[str, ...]]:
        """The settings the model takes, once it has loaded; None before."""
        return self._supported_generation_kwargs

    @property
    def return_futures(self) -> bool:
        """Always True: `generate` returns a `Future`."""
        return True

    @property
    def in_flight(self) -> int:
        """How many calls are waiting for their answer."""
        return len(self._pending)

    @property
    def failure(self) -> Optional[DistilabelLLMError]:
        """Why this LLM can no longer generate, or None while it can."""
        return self._failure

    def _submit(
        self,
        request: GenerationRequest,
        progress: Optional[ProgressCallback] = None,
        member_progress: Optional[MemberProgressCallback] = None,
    ) -> Future[Outputs]:
        """Registers the call and hands it to the transport; the future resolves when the
        answer comes back, or fails with why it cannot."""
        pending = PendingCall(Call(next(self._ids), request), progress)
        message = self._encode(pending.call)  # outside the lock: answers arrive meanwhile
        with self._lock:
            if self._closed:
                raise RuntimeError(
                    f"This {type(self).__name__} has been torn down; create a new one to generate."
                )
            if self._failure is not None:
                pending.future.set_exception(self._failure)
                return pending.future
            self._pending[pending.call.request_id] = pending
            try:
                self._send(pending, message)
            except BaseException:
                del self._pending[pending.call.request_id]
                raise
        pending.future.add_done_callback(functools.partial(self._on_done, pending.call.request_id))
        return pending.future

    def teardown(self, wait: bool = True) -> None:
        """Stops the model: after the calls in flight finish, or at once. Idempotent.

        Args:
            wait: let the calls in flight finish first, so futures returned before `teardown`
                still resolve. With False, they fail at once and the model's process is
                stopped (killed if it does not stop within a second), even if another
                thread is still waiting inside `teardown()`. Interrupting a waiting
                `teardown()` (Ctrl-C) does the same.

        `generate` afterwards raises.
        """
        with self._lock:
            if self._stopped:
                return
            first = not self._closed
            self._closed = True
            in_flight = [entry.future for entry in self._pending.values()]
        forget_at_exit(self)
        if not wait:
            self._fail_for_good(self._error(f"{self!r} was torn down before this finished."))
        elif not first:
            return  # torn down already, or another thread is waiting: nothing more to do
        else:
            try:
                futures_wait(in_flight)
            except BaseException:
                self.teardown(wait=False)
                raise
        self._stop_model(wait)
        self._stopped = True
        if not self._ready.is_set():  # nobody waiting on `model_name` may wait forever
            self._fail_for_good(self._error(f"{self!r} was torn down before its model loaded."))

    # The transport's part.

    def _encode(self, call: Call) -> Any:
        """The call as the transport sends it (the call itself, by default).

        Raises:
            TypeError: if the call cannot be serialised to cross.
        """
        return call

    def _send(self, pending: PendingCall, message: Any) -> None:
        """Hands a registered call, encoded, to the model; called under the lock, in call
        order."""
        raise NotImplementedError

    def _cancel(self, request_id: int) -> None:
        """Tells the model a call nobody waits for any more may be skipped."""
        raise NotImplementedError

    def _stop_model(self, wait: bool) -> None:
        """Stops the process serving the model: gently after `wait`, else at once. Safe to call
        from two threads at once (a gentle stop overtaken by an immediate one)."""
        raise NotImplementedError

    def _error(self, message: str) -> DistilabelLLMError:
        """This kind of LLM's error, saying `message`."""
        raise NotImplementedError

    # What the transport reports.

    def _ready_with(self, readiness: Readiness) -> None:
        """Records the loaded model's name and settings, and lets waiting callers go on."""
        self._model_name = readiness.model_name
        self._supported_generation_kwargs = readiness.supported_generation_kwargs
        self._uses_gpu = readiness.uses_gpu
        self._ready.set()

    def _deliver(self, replies: Sequence[Reply]) -> None:
        """Resolves each call with its rows (reporting its progress) or fails it with its
        error; a call no longer pending (cancelled, timed out, failed) is dropped. One lock
        for all: a child answers many calls at once while the caller keeps sending."""
        with self._lock:
            answered = [(self._pending.pop(reply.request_id, None), reply) for reply in replies]
        for pending, reply in answered:
            if pending is None:
                continue
            if reply.error is not None:
                settle(pending.future, exception=reply.error)
                continue
            rows = reply.rows
            assert rows is not None
            if pending.progress is not None:
                request = pending.call.request
                advance = len(request.inputs) * request.num_generations
                report_progress(pending.progress, advance=advance)
            if pending.structured_model is not None:
                rows = with_models(rows, pending.structured_model)
            settle(pending.future, result=rows)

    def _fail_for_good(self, error: DistilabelLLMError) -> DistilabelLLMError:
        """Records why this LLM can no longer generate (the first reason wins) and fails every
        call in flight with it; returns the recorded reason."""
        with self._lock:
            if self._failure is None:
                self._failure = error
            pending = list(self._pending.values())
            self._pending.clear()
        self._ready.set()
        for entry in pending:
            settle(entry.future, exception=self._failure)
        return self._failure

    def _on_done(self, request_id: int, future: Future[Outputs]) -> None:
        if not future.cancelled():
            return
        with self._lock:
            pending = self._pending.pop(request_id, None)
            if pending is not None:
                self._cancel(request_id)

    def _load_timed_out(self) -> DistilabelLLMError:
        return self._error(
            f"The model of {self!r} did not load within load_timeout={self.load_timeout}s, "
            "so it cannot generate. Raise `load_timeout` if the load is slow rather than stuck."
        )

    def _stop_at_exit(self) -> None:
        self.teardown(wait=False)

    def __rich_repr__(self) -> Iterator[Tuple[str, Any]]:
        yield "task", type(self.task).__name__
        yield "model_name", self._model_name or "<loading>"
