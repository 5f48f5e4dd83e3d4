"""What crosses between a `RemoteLLM` and the process serving its model: typed records shared
by `ProcessLLM` (pickled over a socket) and `RayLLM` (Ray's own serialisation).

The serving side (`serve_calls`) is shared too: calls queued together are served by one
`generate` when they ask for the same number of generations with the same settings but for
their rows' first slots (merged into one list), which lets a backend batch them and amortises
the bridge's cost; a merged call that fails is served again call by call, to isolate the one
at fault.
"""

from __future__ import annotations

from typing import Any, List, NamedTuple, Optional, Tuple

from distilabel_llm.llm.core.settings import GenerationRequest

__all__ = ["OFFLINE_ELSEWHERE", "Call", "Readiness", "Reply", "load_llm", "serve_calls"]

# Calls are merged into one `generate` up to this many rows, so that a backend batching the
# call (a GPU model) is never handed an unbounded batch.
_MAX_COALESCED_ROWS = 64

# Offline batch jobs run on the provider, and their ids live in the LLM that sent them: in a
# process, an actor or a pool, a stopped job's ids would be lost and a rerun would pay again.
OFFLINE_ELSEWHERE = (
    "{name} sends offline batch jobs (use_offline_batch_generation=True), which run on the "
    "provider, not in a process, an actor or a pool: give it to Pipeline(generator=...) or "
    "call its generate() directly, so that an unfinished job's ids are kept for the rerun."
)


class Call(NamedTuple):
    """A request on its way to the model, with the id its answer comes back under."""

    request_id: int
    request: GenerationRequest


class Reply(NamedTuple):
    """A call's answer: its rows, or why it failed (an exception, or a description of one
    that could not be pickled)."""

    request_id: int
    rows: Optional[List[List[Any]]]
    error: Optional[Any] = None


class Readiness(NamedTuple):
    """What the serving side says once the model has loaded, or failed to."""

    model_name: Optional[str]
    supported_generation_kwargs: Optional[Tuple[str, ...]]
    uses_gpu: bool
    load_error: Optional[str] = None  # the load's traceback


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
    if llm.offline:
        raise ValueError(OFFLINE_ELSEWHERE.format(name=type(llm).__qualname__))
    llm.load()
    return llm


def serve_calls(llm: Any, calls: List[Call]) -> List[Reply]:
    """Serves `calls` with as few `generate`s as their settings allow; a reply per call."""
    return [reply for group in _coalesce(calls) for reply in _serve_group(llm, group)]


def _coalesce(calls: List[Call]) -> List[List[Call]]:
    """Groups consecutive calls that can be served as one, up to a row budget."""
    groups: List[List[Call]] = []
    rows = 0
    for call in calls:
        request = call.request
        group = groups[-1] if groups else None
        if (
            group
            and group[-1].request.num_generations == request.num_generations
            and group[-1].request.settings.same_but_offsets(request.settings)
            and rows + len(request.inputs) <= _MAX_COALESCED_ROWS
        ):
            group.append(call)
            rows += len(request.inputs)
        else:
            groups.append([call])
            rows = len(request.inputs)
    return groups


def _serve_group(llm: Any, group: List[Call]) -> List[Reply]:
    if len(group) == 1:
        (call,) = group
        try:
            return [Reply(call.request_id, _generate(llm, call.request))]
        except Exception as error:
            return [Reply(call.request_id, None, error)]
    first = group[0].request
    offsets = [
        offset
        for call in group
        for offset in call.request.settings.row_offsets(len(call.request.inputs))
    ]
    merged = GenerationRequest(
        [row for call in group for row in call.request.inputs],
        first.num_generations,
        first.settings.with_offsets(offsets),
    )
    try:
        rows = _generate(llm, merged)
    except Exception:
        return [reply for call in group for reply in _serve_group(llm, [call])]
    replies = []
    start = 0
    for call in group:
        end = start + len(call.request.inputs)
        replies.append(Reply(call.request_id, rows[start:end]))
        start = end
    return replies


def _generate(llm: Any, request: GenerationRequest) -> Any:
    if llm.return_futures:  # rows on the LLM's own threads
        return llm._submit(request).result()
    return llm._run(request)
