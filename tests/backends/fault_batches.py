"""The fault server's fake OpenAI Batch API: files uploaded as multipart forms, batch jobs that
finish after a set number of status checks, output and error files read back as JSONL.

A request whose last user message contains `batch-fail` lands in the error file with a 500.
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


@dataclass
class _Job:
    id: str
    input_file_id: str
    checks: int = 0
    output_file_id: Optional[str] = None
    error_file_id: Optional[str] = None
    total: int = 0
    completed: int = 0
    failed: int = 0


@dataclass
class BatchAPI:
    """Files and batch jobs, shared by the server's request threads.

    Args:
        checks_to_finish: status checks a job answers "in_progress" before "completed".
        checked_in_progress: set once a job was found not finished.
    """

    answer: Callable[[Dict[str, Any]], Dict[str, Any]]
    checks_to_finish: int = 2
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
            if job.output_file_id is None:
                self._run(job)
            return self._describe(job, "completed")

    def content(self, file_id: str) -> Optional[bytes]:
        with self.lock:
            return self.files.get(file_id)

    @property
    def created(self) -> int:
        """How many batch jobs were created."""
        with self.lock:
            return len(self.jobs)

    def _lines(self, file_id: str) -> List[Dict[str, Any]]:
        text = self.files[file_id].decode("utf-8")
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def _run(self, job: _Job) -> None:
        done, failed = [], []
        for line in self._lines(job.input_file_id):
            body = line["body"]
            last = str((body.get("messages") or [{}])[-1].get("content", ""))
            if FAILING_TEXT in last:
                error = {"error": {"message": "the fake batch failed this request"}}
                response = {"status_code": 500, "body": error}
                failed.append({"custom_id": line["custom_id"], "response": response})
            else:
                response = {"status_code": 200, "body": self.answer(body)}
                done.append({"custom_id": line["custom_id"], "response": response, "error": None})
        job.output_file_id = f"file-{next(self._ids)}"
        self.files[job.output_file_id] = _jsonl(done)
        job.completed, job.failed = len(done), len(failed)
        if failed:
            job.error_file_id = f"file-{next(self._ids)}"
            self.files[job.error_file_id] = _jsonl(failed)

    def _describe(self, job: _Job, status: str) -> Dict[str, Any]:
        finished = status == "completed"
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
            "request_counts": {
                "total": job.total,
                "completed": job.completed,
                "failed": job.failed,
            },
        }


def _jsonl(items: List[Dict[str, Any]]) -> bytes:
    return "\n".join(json.dumps(item) for item in items).encode("utf-8")
