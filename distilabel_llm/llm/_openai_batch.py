"""Offline batch generation through the OpenAI Batch API: every request of a call written to
one JSONL file, one batch job made from it, its status checked until it is done, and its output
and error files read back into rows by each request's `custom_id`."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

from distilabel_llm.errors import OfflineBatchNotFinishedError
from distilabel_llm.llm._callbacks import report_progress
from distilabel_llm.llm._openai_client import chat_messages, read_completion
from distilabel_llm.llm.outputs import LLMOutput
from distilabel_llm.llm.structured import STRUCTURED
from distilabel_llm.tasks.prompt import ChatMessages

__all__ = [
    "BatchResult",
    "describe_batch",
    "fetch_results",
    "generate_offline",
    "submit_batch",
    "wait_for_batch",
]

logger = logging.getLogger("distilabel_llm")

_ENDPOINT = "/v1/chat/completions"
_ENDED_BADLY = ("failed", "expired", "cancelling", "cancelled")

# A request's chat completion, or why it has none.
BatchResult = Tuple[Optional[Any], Optional[str]]
# Shows a batch job's state on a progress bar; None clears it.
ShowStatus = Callable[[Optional[str]], None]


async def submit_batch(client: Any, bodies: List[Dict[str, Any]]) -> str:
    """Uploads one request per body and starts a batch job of them; returns the job's id."""
    lines = (
        json.dumps({"custom_id": _custom_id(i), "method": "POST", "url": _ENDPOINT, "body": body})
        for i, body in enumerate(bodies)
    )
    data = "\n".join(lines).encode("utf-8")
    upload = await client.files.create(file=("distilabel_llm_batch.jsonl", data), purpose="batch")
    batch = await client.batches.create(
        input_file_id=upload.id, endpoint=_ENDPOINT, completion_window="24h"
    )
    return str(batch.id)


async def wait_for_batch(
    client: Any,
    jobs_ids: Tuple[str, ...],
    poll_seconds: Optional[float],
    show_status: ShowStatus = lambda text: None,
) -> Any:
    """The finished batch job; checks every `poll_seconds`, or once when it is None, showing
    its state after each check.

    Raises:
        OfflineBatchNotFinishedError: if it is not done and `poll_seconds` is None.
        RuntimeError: if the job failed, expired or was cancelled.
    """
    (job_id,) = jobs_ids
    while True:
        batch = await client.batches.retrieve(job_id)
        show_status(describe_batch(batch))
        if batch.status == "completed":
            return batch
        if batch.status in _ENDED_BADLY:
            raise RuntimeError(
                f"The offline batch job {job_id} ended {batch.status!r} without results: "
                f"{getattr(batch, 'errors', None)}. Create the LLM without `jobs_ids` to submit "
                "the requests again."
            )
        if poll_seconds is None:
            raise OfflineBatchNotFinishedError(jobs_ids, str(batch.status))
        await asyncio.sleep(poll_seconds)


def describe_batch(batch: Any) -> str:
    """`batch job <id> in_progress: 120/500 requests done, 3 failed`, as far as it is known."""
    text = f"batch job {batch.id} {batch.status}"
    counts = getattr(batch, "request_counts", None)
    if counts is None or not counts.total:
        return text
    failed = f", {counts.failed:,} failed" if counts.failed else ""
    return f"{text}: {counts.completed:,}/{counts.total:,} requests done{failed}"


async def fetch_results(client: Any, batch: Any, count: int, openai: Any) -> List[BatchResult]:
    """Each of the `count` requests' chat completion, in order, or why it has none."""
    lines: Dict[str, Dict[str, Any]] = {}
    for file_id in (batch.output_file_id, getattr(batch, "error_file_id", None)):
        if file_id:
            content = await client.files.content(file_id)
            for line in content.text.splitlines():
                if line.strip():
                    item = json.loads(line)
                    lines[str(item.get("custom_id"))] = item
    results: List[BatchResult] = []
    for index in range(count):
        item = lines.get(_custom_id(index))
        response = (item or {}).get("response") or {}
        if item is None:
            results.append((None, f"request {index} is missing from the batch job's output"))
        elif item.get("error") or response.get("status_code") != 200:
            results.append((None, f"the batch job failed request {index}: {_why(item)}"))
        else:
            completion = openai.types.chat.ChatCompletion.model_validate(response["body"])
            results.append((completion, None))
    return results


async def generate_offline(
    llm: Any,
    prompts: List[Union[str, ChatMessages]],
    offsets: List[int],
    num_generations: int,
    settings: Dict[str, Any],
    show_status: Optional[ShowStatus] = None,
) -> List[List[LLMOutput]]:
    """An `OpenAILLM`'s rows from one batch job: submitted now, or the one its `jobs_ids`
    names (cleared once its results are read). `show_status` hears the job's state."""

    def show(text: Optional[str]) -> None:
        if show_status is not None:  # a failing display never fails the job
            report_progress(show_status, text)

    if llm.jobs_ids is None:
        bodies = []
        for prompt, offset in zip(prompts, offsets):
            slot = {"seed": settings["seed"] + offset} if "seed" in settings else {}
            body = llm._body({**settings, **slot})
            body.update(body.pop("extra_body", None) or {})  # as the client would send it
            body.update(model=llm.model, messages=chat_messages(prompt))
            if num_generations > 1:
                body["n"] = num_generations
            bodies.append(body)
        llm.jobs_ids = (await submit_batch(llm._client, bodies),)
        logger.info("%s submitted offline batch job %s.", type(llm).__name__, llm.jobs_ids)
    poll = llm.offline_batch_generation_block_until_done
    batch = await wait_for_batch(llm._client, llm.jobs_ids, poll, show)
    total = getattr(getattr(batch, "request_counts", None), "total", None)
    if total is not None and total != len(prompts):
        raise ValueError(
            f"The offline batch job {llm.jobs_ids} holds {total} requests, but this call "
            f"has {len(prompts)} rows: `jobs_ids` must come from a call with the same rows."
        )
    results = await fetch_results(llm._client, batch, len(prompts), llm._openai)
    llm.jobs_ids = None  # fetched: the next call submits a job of its own
    show(None)
    structured = settings.get(STRUCTURED)
    rows = []
    for prompt, (completion, why) in zip(prompts, results):
        made = read_completion(completion) if completion is not None else []
        outputs = [
            llm._output(prompt, text, stats, error=error, structured=structured)
            for text, stats, error in made[:num_generations]
        ]
        why = why or f"the batch job returned {len(made)} of {num_generations} generations"
        outputs.extend(
            llm._output(prompt, None, error=why) for _ in range(num_generations - len(outputs))
        )
        rows.append(outputs)
    return rows


def _custom_id(index: int) -> str:
    return f"request-{index}"


def _why(item: Dict[str, Any]) -> str:
    error = item.get("error") or ((item.get("response") or {}).get("body") or {}).get("error")
    if isinstance(error, dict):
        return str(error.get("message") or error)
    status = (item.get("response") or {}).get("status_code")
    return str(error or f"status {status}")
