"""`RemoteLLM`: what `ProcessLLM` and `RayLLM` share, an LLM whose model lives elsewhere.

Its model loads in another process (a child, a Ray actor), `generate` returns a `Future`, and
`failure` tells when it can no longer generate, which is how `LLMPool` knows a member is lost.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Optional, Sequence, Tuple

from distilabel_llm.errors import DistilabelLLMError
from distilabel_llm.utils.lifecycle import StoppingContext

if TYPE_CHECKING:
    from distilabel_llm.llm.base import ProgressCallback
    from distilabel_llm.llm.outputs import LLMOutput
    from distilabel_llm.tasks.base import Task

__all__ = ["RemoteLLM"]


class RemoteLLM(StoppingContext):
    """The base of LLMs served from another process; subclasses start it and talk to it."""

    def __init__(self, task: Task) -> None:
        self.task = task
        self._lock = threading.Lock()
        self._pending: Dict[Any, Any] = {}  # what is in flight, keyed as the subclass likes
        self._closed = False
        self._failure: Optional[DistilabelLLMError] = None
        self._model_name: Optional[str] = None
        self._ready = threading.Event()  # set once the model loaded, or never will

    @property
    def model_name(self) -> str:
        """The model's name, once it has loaded; waits for the load.

        Raises:
            DistilabelLLMError: why the model cannot be used (it failed to load, or the
                process serving it died first).
        """
        self._ready.wait()
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
    ) -> Future[List[List[LLMOutput]]]:
        """Sends `inputs` to the model; returns a `Future` of its outputs at once.

        Args:
            inputs: the rows, each a dict with the task's input keys.
            num_generations: outputs per row.
            progress_callback_func: called as `progress_callback_func(advance=k)` when the
                call completes, with `k = len(inputs) * num_generations`.

        Returns:
            A `Future` of `len(inputs)` rows of `num_generations` outputs, in input order.

        Raises:
            RuntimeError: after `teardown`.
        """
        raise NotImplementedError

    def _stop_at_exit(self) -> None:
        self.teardown(wait=False)

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={value!r}" for name, value in self.__rich_repr__())
        return f"{type(self).__name__}({fields})"

    def __rich_repr__(self) -> Iterator[Tuple[str, Any]]:
        yield "task", type(self.task).__name__
        yield "model_name", self._model_name or "<loading>"
