"""`RemoteLLM`: what `ProcessLLM` and `RayLLM` share, an LLM whose model lives elsewhere.

Its model loads in another process (a child, a Ray actor), `generate` returns a `Future`, and
`failure` tells when it can no longer generate, which is how `LLMPool` knows a member is lost.
The shutdown sequence is shared too: `teardown()` waits for the calls in flight, and
`teardown(wait=False)` stops the model at once and fails them, whatever came before it, even
while another thread is still inside a waiting `teardown()`.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future
from concurrent.futures import wait as futures_wait
from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Optional, Sequence, Tuple

from distilabel_llm.errors import DistilabelLLMError
from distilabel_llm.llm.core.conversations import Conversation, generate_outputs
from distilabel_llm.llm.core.outputs import GenerateOutput
from distilabel_llm.llm.core.settings import check_generation_kwargs
from distilabel_llm.utils.future_tools import settle
from distilabel_llm.utils.lifecycle import StoppingContext, forget_at_exit

if TYPE_CHECKING:
    from distilabel_llm.llm.core.llm import ProgressCallback
    from distilabel_llm.llm.core.outputs import LLMOutput
    from distilabel_llm.tasks.base import Task

__all__ = ["RemoteLLM", "model_name_now"]


class RemoteLLM(StoppingContext):
    """The base of LLMs served from another process; subclasses start it and talk to it.

    Subclasses keep what is in flight in `_pending` (each value has a `future`), and implement
    `generate`, `_stop_model(wait)` and `_error(message)`.
    """

    def __init__(self, task: Task, load_timeout: Optional[float] = None) -> None:
        if load_timeout is not None and not load_timeout > 0:
            raise ValueError(f"`load_timeout` must be a positive number, not {load_timeout!r}.")
        self.task = task
        self.load_timeout = load_timeout
        self._lock = threading.Lock()
        self._pending: Dict[int, Any] = {}  # request id -> what the subclass tracks, with .future
        self._closed = False
        self._stopped = False  # the model's process is gone, after a teardown
        self._failure: Optional[DistilabelLLMError] = None
        self._model_name: Optional[str] = None
        # The settings the model takes, as it reported once loaded.
        self._supported_generation_kwargs: Optional[Tuple[str, ...]] = None
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

    def generate(
        self,
        inputs: Sequence[Dict[str, Any]],
        num_generations: int = 1,
        progress_callback_func: Optional[ProgressCallback] = None,
        generation_kwargs: Optional[Dict[str, Any]] = None,
    ) -> Future[List[List[LLMOutput]]]:
        """Sends `inputs` to the model; returns a `Future` of its outputs at once.

        Args:
            inputs: the rows, each a dict with the task's input keys.
            num_generations: outputs per row.
            progress_callback_func: called as `progress_callback_func(advance=k)` when the
                call completes, with `k = len(inputs) * num_generations`.
            generation_kwargs: settings for this call, over the model's defaults.

        Returns:
            A `Future` of `len(inputs)` rows of `num_generations` outputs, in input order.

        Raises:
            RuntimeError: after `teardown`.
            GenerationSettingsError: (a `ValueError`) for a setting of the wrong kind, or one
                the model does not take once it is known (until then, the call's future
                fails with it).
        """
        raise NotImplementedError

    def generate_outputs(
        self,
        inputs: Sequence[Conversation],
        num_generations: int = 1,
        **generation_kwargs: Any,
    ) -> List[GenerateOutput]:
        """distilabel 1.x's call; see `LLM.generate_outputs`. Waits for the results."""
        return generate_outputs(self, inputs, num_generations, generation_kwargs or None)

    def check_generation_kwargs(
        self, generation_kwargs: Optional[Dict[str, Any]]
    ) -> Dict[str, Any]:
        """`generation_kwargs` checked: against the settings the model takes once it has
        loaded, against the catalogue of settings before (never waiting for the load).

        Raises:
            GenerationSettingsError: (a `ValueError`) naming the setting at fault.
        """
        return check_generation_kwargs(
            generation_kwargs, self._supported_generation_kwargs, type(self).__name__
        )

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

    def _stop_model(self, wait: bool) -> None:
        """Stops the process serving the model: gently after `wait`, else at once. Safe to call
        from two threads at once (a gentle stop overtaken by an immediate one)."""
        raise NotImplementedError

    def _error(self, message: str) -> DistilabelLLMError:
        """This kind of LLM's error, saying `message`."""
        raise NotImplementedError

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

    def _load_timed_out(self) -> DistilabelLLMError:
        return self._error(
            f"The model of {self!r} did not load within load_timeout={self.load_timeout}s, "
            "so it cannot generate. Raise `load_timeout` if the load is slow rather than stuck."
        )

    def _stop_at_exit(self) -> None:
        self.teardown(wait=False)

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={value!r}" for name, value in self.__rich_repr__())
        return f"{type(self).__name__}({fields})"

    def __rich_repr__(self) -> Iterator[Tuple[str, Any]]:
        yield "task", type(self.task).__name__
        yield "model_name", self._model_name or "<loading>"


def model_name_now(llm: Any) -> Optional[str]:
    """The model name of any kind of LLM if known without waiting, else None (still loading,
    or never loaded)."""
    if isinstance(llm, RemoteLLM):
        try:
            return llm.wait_loaded(0)
        except DistilabelLLMError:
            return llm._model_name
    return str(llm.model_name)
