"""The fault server's fake OpenAI Batch API: files uploaded as multipart forms, batch jobs that
end after a set number of status checks, output and error files read back as JSONL.

Requests are answered in the order of the uploaded file. Faults, per request by the text of its
last user message:

- `batch-fail`: it lands in the error file with a 500;
- `batch-garble`: its output line is cut short after its `custom_id`;
- `batch-noise`: its output line is not JSON and names no `custom_id`.

And per job, set on `BatchAPI`: `refuse_status` (creation refused, e.g. 429), `end_as` (a job
that ends "failed", or "expired" / "cancelled" after `answered_before_end` requests, the rest in
the error file as the real API writes them), `lose_output` (its output file cannot be read).
"""

from __future__ import annotations

import email.parser
import itertools
import json
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional

__all__ = ["BatchAPI"]

FAILING_TEXT = "batch-fail"
GARBLED_TEXT = "batch-garble"
NOISE_TEXT = "batch-noise"
# What the real API says of the requests a job did not do before it ended.
_UNDONE = {
    "expired": (
        "batch_expired",
        "This request could not be executed before the completion window expired.",
    ),
    "cancelled": (
        "batch_cancelled",
        "This request was not executed because the batch was cancelled.",
    ),
}
_FAILED_JOB_ERROR = {
    "code": "token_limit_exceeded",
    "message": "Enqueued token limit reached for fault-model.",
    "param": None,
    "line": None,
}


@dataclass
class _Job:
    id: str
    input_file_id: str
    checks: int = 0
    status: str = "in_progress"
    output_file_id: Optional[str] = None
    error_file_id: Optional[str] = None
    total: int = 0
    completed: int = 0
    failed: int = 0


@dataclass
class BatchAPI:
    """Files and batch jobs, shared by the server's request threads.

    Args:
        checks_to_finish: status checks a job answers "in_progress" before it ends.
        checked_in_progress: set once a job was found not finished.
        refuse_status: answer job creations with this HTTP status (429: too many requests),
            making no job.
        end_as: the state jobs end in: "completed", "failed" (nothing done), "expired" or
            "cancelled" (after `answered_before_end` requests).
        answered_before_end: requests an expired or cancelled job answered.
        lose_output: reading a job's output file answers 404 while set.
    """

    answer: Callable[[Dict[str, Any]], Dict[str, Any]]
    checks_to_finish: int = 2
    refuse_status: Optional[int] = None
    end_as: str = "completed"
    answered_before_end: int = 1
    lose_output: bool = False
    checked_in_progress: threading.Event = field(default_factory=threading.Event)
    files: Dict[str, bytes] = field(default_factory=dict)
    jobs: Dict[str, _Job] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    _ids: Any = field(default_factory=itertools.count)

    def upload(self, content_type: str, payload: bytes) -> Dict[str, Any]:
        form = email.parser.BytesParser().parsebytes(
            f"Content-Type: {content_type}\r\n\r\n".encode() + payload
        )
        data = next(
            part.get_payload(decode=True)
            for part in form.walk()
            if part.get_param("name", header="content-disposition") == "file"
        )
        with self.lock:
            file_id = f"file-{next(self._ids)}"
            self.files[file_id] = data
        return {
            "id": file_id,
            "object": "file",
            "bytes": len(data),
            "purpose": "batch",
            "filename": "batch.jsonl",
            "created_at": 0,
            "status": "processed",
        }

    def create(self, body: Dict[str, Any]) -> Dict[str, Any]:
        with self.lock:
            job = _Job(id=f"batch-{next(self._ids)}", input_file_id=body["input_file_id"])
            self.jobs[job.id] = job
            job.total = len(self._lines(job.input_file_id))
            return self._describe(job, "validating")

    def retrieve(self, job_id: str) -> Optional[Dict[str, Any]]:
        with self.lock:
            job = self.jobs.get(job_id)
            if job is None:
                return None
            job.checks += 1
            if job.checks < self.checks_to_finish:
                self.checked_in_progress.set()
                return self._describe(job, "in_progress")
            if job.status == "in_progress":
                self._run(job)
            return self._describe(job, job.status)

    def content(self, file_id: str) -> Optional[bytes]:
        with self.lock:
            outputs = {job.output_file_id for job in self.jobs.values()}
            if self.lose_output and file_id in outputs:
                return None
            return self.files.get(file_id)

    def requests(self, job_id: str) -> List[Dict[str, Any]]:
        """The request lines job `job_id` was made from."""
        with self.lock:
            return self._lines(self.jobs[job_id].input_file_id)

    @property
    def created(self) -> int:
        """How many batch jobs were created."""
        with self.lock:
            return len(self.jobs)

    def _lines(self, file_id: str) -> List[Dict[str, Any]]:
        text = self.files[file_id].decode("utf-8")
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def _run(self, job: _Job) -> None:
        job.status = self.end_as
        if job.status == "failed":  # rejected as a whole: no request done, no file
            return
        done: List[bytes] = []
        failed: List[Dict[str, Any]] = []
        for index, line in enumerate(self._lines(job.input_file_id)):
            custom_id, body = line["custom_id"], line["body"]
            last = str((body.get("messages") or [{}])[-1].get("content", ""))
            if job.status in _UNDONE and index >= self.answered_before_end:
                code, message = _UNDONE[job.status]
                error = {"code": code, "message": message}
                failed.append({"custom_id": custom_id, "response": None, "error": error})
            elif FAILING_TEXT in last:
                error = {"error": {"message": "the fake batch failed this request"}}
                response = {"status_code": 500, "body": error}
                failed.append({"custom_id": custom_id, "response": response})
            else:
                response = {"status_code": 200, "body": self.answer(body)}
                item = {"custom_id": custom_id, "response": response, "error": None}
                done.append(_output_line(item, last))
        job.output_file_id = f"file-{next(self._ids)}"
        self.files[job.output_file_id] = b"\n".join(done)
        job.completed, job.failed = len(done), len(failed)
        if failed:
            job.error_file_id = f"file-{next(self._ids)}"
            self.files[job.error_file_id] = b"\n".join(json.dumps(f).encode() for f in failed)

    def _describe(self, job: _Job, status: str) -> Dict[str, Any]:
        finished = status != "in_progress"
        failed = status == "failed"
        return {
            "id": job.id,
            "object": "batch",
            "endpoint": "/v1/chat/completions",
            "input_file_id": job.input_file_id,
            "completion_window": "24h",
            "status": status,
            "created_at": 0,
            "output_file_id": job.output_file_id if finished else None,
            "error_file_id": job.error_file_id if finished else None,
            "errors": {"object": "list", "data": [_FAILED_JOB_ERROR]} if failed else None,
            "request_counts": {
                "total": job.total,
                "completed": job.completed,
                "failed": job.failed,
            },
        }


def _output_line(item: Dict[str, Any], text: str) -> bytes:
    """`item` as its output line, spoilt as `text` asks."""
    line = json.dumps(item)
    if GARBLED_TEXT in text:
        line = line[: line.index('"response"') + 20]
    elif NOISE_TEXT in text:
        line = "<html>upstream error</html>"
    return line.encode("utf-8")
