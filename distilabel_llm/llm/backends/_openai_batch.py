"""Offline batch generation through the OpenAI Batch API: every request of a call written to
one JSONL file, one batch job made from it, its state checked until it ends, and its output
and error files read back into rows.

Each request's `custom_id` is a hash of the request itself (prompt, settings, seed, `n`), so a
result is matched to the row that asked for it, never by position: whatever order the rows come
in, and whichever job (of the `jobs_ids` given) it comes from."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

from distilabel_llm.errors import OfflineBatchNotFinishedError, OpenAIRequestError
from distilabel_llm.llm.backends._openai_client import chat_messages, read_completion, redact
from distilabel_llm.llm.backends.async_llm import agenerate_kwargs
from distilabel_llm.llm.core._callbacks import report_progress
from distilabel_llm.llm.core.outputs import LLMOutput, TokenStatistics
from distilabel_llm.llm.core.settings import GenerationSettings
from distilabel_llm.tasks.prompt import ChatMessages

__all__ = [
    "BatchResult",
    "custom_ids",
    "describe_batch",
    "fetch_results",
    "generate_offline",
    "read_line",
    "submit_batch",
    "wait_for_jobs",
]

logger = logging.getLogger("distilabel_llm")

_ENDPOINT = "/v1/chat/completions"
# The states a job never leaves. "cancelling" is not one: the output file of what it did
# (paid for) comes once it is "cancelled".
_ENDED = ("completed", "failed", "expired", "cancelled")
# A malformed output line's `custom_id`, when that part of it is still readable.
_CUSTOM_ID = re.compile(r'"custom_id"\s*:\s*"([^"\\]+)"')
_SEND_AGAIN = (
    "Call again to send it in a new batch job (a Pipeline sends its failed rows again when "
    "its job is run again)."
)

# One generation's text, token counts, and why it has no text.
Generation = Tuple[Optional[str], Optional[TokenStatistics], Optional[str]]
# A request's generations, or why it has none.
BatchResult = Tuple[Optional[List[Generation]], Optional[str]]
# Shows the batch jobs' states on a progress bar; None clears it.
ShowStatus = Callable[[Optional[str]], None]


def custom_ids(bodies: Sequence[Dict[str, Any]]) -> List[str]:
    """Each request body's `custom_id`: a hash of the body, so that the same request gets the
    same id in any call; identical bodies (the same prompt twice, without a seed) are told
    apart by how many came before, their answers being interchangeable."""
    seen: Dict[str, int] = {}
    ids = []
    for body in bodies:
        text = json.dumps(body, sort_keys=True, ensure_ascii=False)
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]
        copies = seen.get(digest, 0)
        seen[digest] = copies + 1
        ids.append(f"{digest}-{copies}")
    return ids


async def submit_batch(client: Any, requests: Dict[str, Dict[str, Any]]) -> str:
    """Uploads one request per `custom_id: body` and starts a batch job of them; returns the
    job's id."""
    lines = (
        json.dumps({"custom_id": key, "method": "POST", "url": _ENDPOINT, "body": body})
        for key, body in requests.items()
    )
    data = "\n".join(lines).encode("utf-8")
    upload = await client.files.create(file=("distilabel_llm_batch.jsonl", data), purpose="batch")
    batch = await client.batches.create(
        input_file_id=upload.id, endpoint=_ENDPOINT, completion_window="24h"
    )
    return str(batch.id)


async def wait_for_jobs(
    llm: Any,
    jobs_ids: Tuple[str, ...],
    poll_seconds: Optional[float],
    show_status: ShowStatus = lambda text: None,
) -> Dict[str, Any]:
    """Each job once it has ended (its batch object), or why its state could not be read (a
    str); checks every `poll_seconds`, or once when it is None, showing the states each time.

    Raises:
        OfflineBatchNotFinishedError: if a job has not ended and `poll_seconds` is None.
        OpenAIAccessError: if the server rejects the key: the jobs are kept for a rerun.
    """
    ended: Dict[str, Any] = {}
    shown: Dict[str, str] = {}
    while True:
        pending = None
        for job_id in jobs_ids:
            if job_id in ended:
                continue
            try:
                batch = await llm._client.batches.retrieve(job_id)
            except llm._openai.APIError as error:
                _raise_if_fatal(llm, error)
                ended[job_id] = f"could not be read ({_describe(llm, error)})"
                shown[job_id] = f"batch job {job_id} unreadable"
                continue
            shown[job_id] = describe_batch(batch)
            if batch.status in _ENDED:
                ended[job_id] = batch
            else:
                pending = batch.status
        show_status("; ".join(shown.values()))
        if pending is None:
            return ended
        if poll_seconds is None:
            raise OfflineBatchNotFinishedError(jobs_ids, str(pending))
        await asyncio.sleep(poll_seconds)


def describe_batch(batch: Any) -> str:
    """`batch job <id> in_progress: 120/500 requests done, 3 failed`, as far as it is known."""
    text = f"batch job {batch.id} {batch.status}"
    counts = getattr(batch, "request_counts", None)
    if counts is None or not counts.total:
        return text
    failed = f", {counts.failed:,} failed" if counts.failed else ""
    return f"{text}: {counts.completed:,}/{counts.total:,} requests done{failed}"


def read_line(line: str, openai: Any) -> Tuple[Optional[str], BatchResult]:
    """One line of a job's output or error file: the `custom_id` it answers (None when it has
    no readable one) and that request's generations, or why it has none."""
    try:
        item = json.loads(line)
    except ValueError:
        item = None
    if not isinstance(item, dict) or not isinstance(item.get("custom_id"), str):
        match = _CUSTOM_ID.search(line)
        why = f"returned a malformed line for this request: {line[:120]!r}"
        return (match.group(1) if match else None), (None, why)
    response = item.get("response") if isinstance(item.get("response"), dict) else {}
    if item.get("error") or response.get("status_code") != 200:
        return item["custom_id"], (None, f"failed this request: {_why(item)}")
    try:
        completion = openai.types.chat.ChatCompletion.model_validate(response.get("body"))
        return item["custom_id"], (read_completion(completion), None)
    except ValueError as error:  # pydantic's ValidationError is one
        why = f"answered this request with no chat completion: {error}"
        return item["custom_id"], (None, why)


@dataclass
class _Fetched:
    """What a call's jobs returned: each request's result by `custom_id`, and notes on what
    went wrong with a whole job or with lines no request can be told from."""

    jobs_ids: Tuple[str, ...]
    results: Dict[str, BatchResult] = field(default_factory=dict)
    notes: List[str] = field(default_factory=list)
    unreadable_lines: List[str] = field(default_factory=list)

    def add(self, custom_id: str, result: BatchResult) -> None:
        """Keeps `result`, unless the request already has generations (a duplicate line)."""
        if self.results.get(custom_id, (None, None))[0] is None:
            self.results[custom_id] = result

    def result(self, custom_id: str) -> BatchResult:
        """The request's result, or why none of the jobs has one."""
        if custom_id in self.results:
            return self.results[custom_id]
        jobs = f"batch job {', '.join(self.jobs_ids)}"
        notes = list(self.notes)
        if self.unreadable_lines:
            notes.append(
                f"{jobs} returned {len(self.unreadable_lines)} output line(s) naming no request, "
                f"e.g. {self.unreadable_lines[0][:120]!r}"
            )
        if notes:
            return None, f"no result for this request: {'; '.join(notes)}. {_SEND_AGAIN}"
        return None, (
            f"{jobs} holds no request like this row's: it was sent for other rows or other "
            f"settings. {_SEND_AGAIN}"
        )


async def fetch_results(llm: Any, job_id: str, job: Any, fetched: _Fetched) -> None:
    """Adds what job `job_id` returned to `fetched`: its output and error files' lines (an
    expired or cancelled job's output file holds the requests it did), or why it has none.

    Raises:
        OpenAIAccessError: if the server rejects the key: the jobs are kept for a rerun.
    """
    if isinstance(job, str):  # its state could not be read
        fetched.notes.append(f"batch job {job_id} {job}; pass jobs_ids=({job_id!r},) to retry")
        return
    where = f"batch job {job_id}"
    if job.status != "completed":
        fetched.notes.append(f"{where} ended {job.status!r}{_job_errors(job)}")
        where = f"{where} ended {job.status!r}; it"
    elif not job.output_file_id and not getattr(job, "error_file_id", None):
        fetched.notes.append(f"{where} completed without an output file")
    for file_id in (job.output_file_id, getattr(job, "error_file_id", None)):
        if not file_id:
            continue
        try:
            text = (await llm._client.files.content(file_id)).text
        except llm._openai.APIError as error:
            _raise_if_fatal(llm, error)
            fetched.notes.append(
                f"batch job {job_id}'s file {file_id} could not be read "
                f"({_describe(llm, error)}); pass jobs_ids=({job_id!r},) to retry"
            )
            continue
        for line in text.splitlines():
            if line.strip():
                custom_id, (made, why) = read_line(line, llm._openai)
                if custom_id is None:
                    logger.warning(
                        "Batch job %s returned a line naming no request: %.200r", job_id, line
                    )
                    fetched.unreadable_lines.append(line)
                else:
                    fetched.add(custom_id, (made, None if why is None else f"{where} {why}"))


async def generate_offline(
    llm: Any,
    prompts: List[Union[str, ChatMessages]],
    offsets: List[int],
    num_generations: int,
    settings: GenerationSettings,
    show_status: Optional[ShowStatus] = None,
) -> List[List[LLMOutput]]:
    """An `OpenAILLM`'s rows from one batch job: submitted now, or the jobs its `jobs_ids` name
    (cleared once their results are read, whatever state the jobs ended in). `show_status`
    hears the jobs' states.

    A row gets the result whose `custom_id` is its request's; a row none of the jobs has a
    result for fails, saying why (the job ended badly, or was sent for other rows). A job the
    API refuses to create ("too many requests") fails every row of the call: none is sent.

    Raises:
        OfflineBatchNotFinishedError: if a job has not ended and the LLM does not wait.
        OpenAIAccessError: if the server rejects the key.
    """

    def show(text: Optional[str]) -> None:
        if show_status is not None:  # a failing display never fails the job
            report_progress(show_status, text)

    kwargs = agenerate_kwargs(settings)
    bodies = [
        _body(llm, prompt, offset, num_generations, kwargs)
        for prompt, offset in zip(prompts, offsets)
    ]
    ids = custom_ids(bodies)
    if llm.jobs_ids is None:
        try:
            llm.jobs_ids = (await submit_batch(llm._client, dict(zip(ids, bodies))),)
        except llm._openai.APIError as error:
            why = _refused(llm, error, len(bodies))
            return [_row(llm, prompt, (None, why), num_generations, None) for prompt in prompts]
        logger.info("%s submitted offline batch job %s.", type(llm).__name__, llm.jobs_ids)
    poll = llm.offline_batch_generation_block_until_done
    jobs = await wait_for_jobs(llm, llm.jobs_ids, poll, show)
    fetched = _Fetched(llm.jobs_ids)
    for job_id, job in jobs.items():
        await fetch_results(llm, job_id, job, fetched)
    llm.jobs_ids = None  # fetched, or dead: the next call submits a job of its own
    show(None)
    return [
        _row(llm, prompt, fetched.result(key), num_generations, settings)
        for prompt, key in zip(prompts, ids)
    ]


def _body(
    llm: Any,
    prompt: Union[str, ChatMessages],
    offset: int,
    num_generations: int,
    settings: Dict[str, Any],
) -> Dict[str, Any]:
    """A row's request body, as the client would send it online."""
    slot = {"seed": settings["seed"] + offset} if "seed" in settings else {}
    body: Dict[str, Any] = llm._body({**settings, **slot})
    body.update(body.pop("extra_body", None) or {})
    body.update(model=llm.model, messages=chat_messages(prompt))
    if num_generations > 1:
        body["n"] = num_generations
    return body


def _row(
    llm: Any,
    prompt: Union[str, ChatMessages],
    result: BatchResult,
    num_generations: int,
    settings: Optional[GenerationSettings],
) -> List[LLMOutput]:
    """A row's outputs from its request's result; the generations it lacks fail with why."""
    made, why = result
    outputs = [
        llm._output(prompt, text, stats, error=error, settings=settings)
        for text, stats, error in (made or [])[:num_generations]
    ]
    why = why or f"the batch job returned {len(outputs)} of {num_generations} generations"
    outputs.extend(
        llm._output(prompt, None, error=why) for _ in range(num_generations - len(outputs))
    )
    return outputs


def _refused(llm: Any, error: Exception, count: int) -> str:
    """Why no row of a call was sent: the job was refused at creation. Never retried row by
    row, which would make one job per row.

    Raises:
        OpenAIRequestError: if no job can be made (the key or the endpoint was refused) or the
            LLM has `fail_fast`.
    """
    explained = llm._explain(error)
    if isinstance(error, llm._fatal_errors()):
        raise explained from error
    why = (
        f"the Batch API did not take the batch job of this call's {count} request(s), so none "
        f"was sent ({explained}); the API may be busy, so retry later. {_SEND_AGAIN}"
    )
    if llm.fail_fast:
        raise OpenAIRequestError(why) from error
    logger.error("%s: %s", type(llm).__name__, why)
    return why


def _raise_if_fatal(llm: Any, error: Exception) -> None:
    """Raises a rejected key or project at once: no job of this server can be read with it."""
    if isinstance(error, (llm._openai.AuthenticationError, llm._openai.PermissionDeniedError)):
        raise llm._explain(error) from error


def _describe(llm: Any, error: Exception) -> str:
    """The error, with any password in the server's URL masked."""
    return redact(f"{type(error).__name__}: {error}", str(llm._client.base_url))


def _job_errors(job: Any) -> str:
    """` (code: message; ...)` from a job's `errors`, or nothing."""
    data = getattr(getattr(job, "errors", None), "data", None) or []
    found = [
        f"{getattr(e, 'code', None)}: {str(getattr(e, 'message', '')).rstrip('.')}" for e in data
    ]
    return f" ({'; '.join(found)})" if found else ""


def _why(item: Dict[str, Any]) -> str:
    response = item.get("response") if isinstance(item.get("response"), dict) else {}
    body = response.get("body") if isinstance(response.get("body"), dict) else {}
    error = item.get("error") or body.get("error")
    if isinstance(error, dict):
        return str(error.get("message") or error)
    return str(error or f"status {response.get('status_code')}")
