"""A small OpenAI-compatible HTTP server that misbehaves on purpose, for the retry and error tests.

It serves `GET /v1/models` and `POST /v1/chat/completions` on 127.0.0.1 (an ephemeral port).
A normal answer echoes the last user message once per choice, as `"echo <k>: <message>"`,
with `usage` counting whitespace-separated words. Faults are scripted per request:

- `script(*faults)`: the next chat requests, in arrival order, get these faults;
- `rule(text, fault)`: every chat request whose last user message contains `text` gets `fault`;
- `max_choices`: answer at most this many choices whatever `n` asks (as llama.cpp's server);
- `hold_until_concurrent(parties)`: each chat request waits until `parties` are in flight;
- `limit(requests, ...)`: a rate limit it enforces, with 429s, `Retry-After` and optionally
  OpenAI's `x-ratelimit-*` headers (see `fault_limits.py`); it applies before any fault.

It also serves a fake Batch API (`batches`, see `fault_batches.py`): `POST /v1/files`,
`POST /v1/batches`, `GET /v1/batches/<id>` and `GET /v1/files/<id>/content`.

Every request is recorded (path, body, arrival and answer times, status) so tests can count
retries and 429s.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, List, Optional, Sequence

from fault_batches import BatchAPI
from fault_limits import Limit, WindowLimiter

__all__ = ["Fault", "FaultServer", "Limit", "RecordedRequest"]

_CHAT_PATH = "/v1/chat/completions"
_MODELS_PATH = "/v1/models"
_FILES_PATH = "/v1/files"
_BATCHES_PATH = "/v1/batches"
_BARRIER_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Fault:
    """How to misbehave on one request; the fields combine (e.g. `status` with `retry_after`).

    Args:
        status: answer with this HTTP status and an OpenAI-style error body.
        retry_after: send `Retry-After` with this many seconds.
        param: the error body's `param` (a 400 with `param="n"` rejects `n`).
        delay: hold the answer this many seconds (until the server stops, at most).
        malformed: answer 200 with a JSON content type and a body that is not JSON.
        choices: answer at most this many choices.
        drop: close the connection without answering.
        null_content: answer 200 with `"content": null` in every choice (as a refusal or a
            filtered answer does), `finish_reason` "content_filter".
        content: answer 200 with this JSON value as every choice's content (a number, say, as
            a broken server might).
        usage: answer 200 with these `usage` fields over the counted ones (a count that is no
            integer, say).
    """

    status: Optional[int] = None
    retry_after: Optional[float] = None
    param: Optional[str] = None
    delay: Optional[float] = None
    malformed: bool = False
    choices: Optional[int] = None
    drop: bool = False
    null_content: bool = False
    content: Any = None
    usage: Optional[Dict[str, Any]] = None


@dataclass
class RecordedRequest:
    """One request the server received."""

    path: str
    body: Dict[str, Any]
    received_at: float
    fault: Optional[Fault]
    answered_at: Optional[float] = None
    status: Optional[int] = None
    """The HTTP status answered; None while unanswered, or for a dropped connection."""


@dataclass
class _State:
    models: Optional[Sequence[str]]
    api_key: Optional[str]
    max_choices: Optional[int] = None
    script: List[Fault] = field(default_factory=list)
    rules: Dict[str, Fault] = field(default_factory=dict)
    requests: List[RecordedRequest] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    barrier: Optional[threading.Barrier] = None
    limiter: Optional[WindowLimiter] = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    stopping: threading.Event = field(default_factory=threading.Event)
    batches: BatchAPI = field(
        default_factory=lambda: BatchAPI(lambda body: _completion(body, None))
    )


class FaultServer:
    """The server; start it with `with FaultServer() as server:` or `start()`/`stop()`.

    Args:
        models: the model ids `/v1/models` lists; `None` answers 404 there (no model list).
        api_key: when set, requests without `Authorization: Bearer <api_key>` get a 401.
    """

    def __init__(
        self, models: Optional[Sequence[str]] = ("fault-model",), api_key: Optional[str] = None
    ) -> None:
        self._state = _State(models=models, api_key=api_key)
        self._httpd: Optional[ThreadingHTTPServer] = None
        self._thread: Optional[threading.Thread] = None

    @property
    def url(self) -> str:
        """The base URL clients use, ending in `/v1`."""
        assert self._httpd is not None, "the server is not started"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    @property
    def max_choices(self) -> Optional[int]:
        return self._state.max_choices

    @max_choices.setter
    def max_choices(self, value: Optional[int]) -> None:
        self._state.max_choices = value

    def script(self, *faults: Fault) -> None:
        """The next chat requests, in arrival order, get these faults."""
        with self._state.lock:
            self._state.script.extend(faults)

    def rule(self, text: str, fault: Fault) -> None:
        """Every chat request whose last user message contains `text` gets `fault`."""
        with self._state.lock:
            self._state.rules[text] = fault

    def hold_until_concurrent(
        self, parties: int, action: Optional[Callable[[], None]] = None
    ) -> None:
        """Each chat request waits until `parties` requests wait together (or fails with 500).

        Args:
            parties: how many requests must be in flight together.
            action: called each time they are, before any is answered.
        """
        self._state.barrier = threading.Barrier(parties, action=action, timeout=_BARRIER_TIMEOUT_S)

    def limit(
        self,
        requests: int,
        tokens: Optional[int] = None,
        window: float = 1.0,
        retry_after: bool = True,
        headers: bool = False,
    ) -> None:
        """Enforces a rate limit on chat requests from now on; see `fault_limits.Limit`."""
        self._state.limiter = WindowLimiter(Limit(requests, tokens, window, retry_after, headers))

    def rate_limited(self) -> int:
        """The chat requests answered with a 429 so far."""
        return sum(request.status == 429 for request in self.requests())

    def requests(self, path: str = _CHAT_PATH) -> List[RecordedRequest]:
        """The requests received on `path` so far, in arrival order."""
        with self._state.lock:
            return [request for request in self._state.requests if request.path == path]

    @property
    def batches(self) -> BatchAPI:
        """The fake Batch API's files and jobs (`checks_to_finish`, `created`)."""
        return self._state.batches

    @property
    def max_in_flight(self) -> int:
        """The most chat requests handled at the same time so far."""
        return self._state.max_in_flight

    def start(self) -> FaultServer:
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.state = self._state  # type: ignore[attr-defined]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.01},  # `stop` waits up to one poll interval
            name="fault-server",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Releases held requests and stops serving. Idempotent."""
        self._state.stopping.set()
        if self._state.barrier is not None:
            self._state.barrier.abort()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def __enter__(self) -> FaultServer:
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()


class _Server(ThreadingHTTPServer):
    # Clients open many connections at once (64 requests in flight, say): socketserver's
    # listen backlog of 5 would have the kernel drop or reset some of them.
    request_queue_size = 256


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real servers do
    server: ThreadingHTTPServer

    @property
    def _state(self) -> _State:
        return self.server.state  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: Any) -> None:  # quiet test output
        pass

    def do_GET(self) -> None:
        record = self._record({}, None)
        if not self._authorised():
            return
        if self.path.startswith(_BATCHES_PATH + "/"):
            self._send_found(self._state.batches.retrieve(self.path.rsplit("/", 1)[1]))
        elif self.path.startswith(_FILES_PATH + "/") and self.path.endswith("/content"):
            data = self._state.batches.content(self.path.split("/")[3])
            if data is None:
                self._send_error(404, f"No file {self.path}", None, None)
            else:
                self._send_bytes(200, data, "application/octet-stream")
        elif self.path != _MODELS_PATH or self._state.models is None:
            self._send_error(404, f"No route {self.path}", None, None)
        else:
            data = [
                {"id": name, "object": "model", "owned_by": "tests"} for name in self._state.models
            ]
            self._send_json(200, {"object": "list", "data": data})
        record.answered_at = time.monotonic()

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        payload = self.rfile.read(length)
        if self.path == _FILES_PATH:
            self._record({}, None)
            content_type = self.headers.get("Content-Type", "")
            self._send_json(200, self._state.batches.upload(content_type, payload))
            return
        body = json.loads(payload or b"{}")
        if self.path == _BATCHES_PATH:
            self._record(body, None)
            refused = self._state.batches.refuse_status
            if refused is not None:  # a short Retry-After keeps the client's retries quick
                self._send_error(refused, "Too many requests: no new batch job", 0.01, None)
            else:
                self._send_json(200, self._state.batches.create(body))
            return
        if self.path != _CHAT_PATH:
            self._record(body, None)
            self._send_error(404, f"No route {self.path}", None, None)
            return
        fault = self._next_fault(body)
        record = self._record(body, fault)
        with self._state.lock:
            self._state.in_flight += 1
            self._state.max_in_flight = max(self._state.max_in_flight, self._state.in_flight)
        try:
            if self._authorised() and self._within_limit(body) and self._wait_for_peers():
                self._answer_chat(body, fault or Fault())
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (e.g. timed out) before the answer
        finally:
            record.answered_at = time.monotonic()
            with self._state.lock:
                self._state.in_flight -= 1

    def _answer_chat(self, body: Dict[str, Any], fault: Fault) -> None:
        if fault.delay:
            self._state.stopping.wait(fault.delay)
        if fault.drop:
            self.close_connection = True  # close the socket with no answer at all
            return
        if fault.status is not None:
            self._send_error(fault.status, "Scripted failure", fault.retry_after, fault.param)
            return
        if fault.malformed:
            self._send_bytes(200, b'{"id": "chatcmpl-broken", "choices": [', "application/json")
            return
        completion = _completion(body, self._choice_limit(fault))
        if fault.null_content:
            for choice in completion["choices"]:
                choice["message"]["content"] = None
                choice["finish_reason"] = "content_filter"
        if fault.content is not None:
            for choice in completion["choices"]:
                choice["message"]["content"] = fault.content
        completion["usage"].update(fault.usage or {})
        self._send_json(200, completion)

    def _within_limit(self, body: Dict[str, Any]) -> bool:
        """Whether the rate limit, if any, accepts this request; a 429 answered if not. The
        answer's `x-ratelimit-*` headers wait in `self._limit_headers` otherwise."""
        self._limit_headers: Dict[str, str] = {}
        limiter = self._state.limiter
        if limiter is None:
            return True
        tokens = _completion(body, None)["usage"]["total_tokens"]
        accepted, self._limit_headers = limiter.admit(tokens, time.monotonic())
        if not accepted:
            self._send_json(
                429,
                {"error": {"message": "Rate limit reached", "type": "requests", "code": None}},
                self._limit_headers,
            )
        return accepted

    def _choice_limit(self, fault: Fault) -> Optional[int]:
        limits = [limit for limit in (fault.choices, self._state.max_choices) if limit is not None]
        return min(limits) if limits else None

    def _next_fault(self, body: Dict[str, Any]) -> Optional[Fault]:
        text = _last_user_message(body)
        with self._state.lock:
            for needle, fault in self._state.rules.items():
                if needle in text:
                    return fault
            return self._state.script.pop(0) if self._state.script else None

    def _record(self, body: Dict[str, Any], fault: Optional[Fault]) -> RecordedRequest:
        record = RecordedRequest(self.path, body, time.monotonic(), fault)
        with self._state.lock:
            self._state.requests.append(record)
        self._recorded = record
        self._limit_headers = {}
        return record

    def _authorised(self) -> bool:
        expected = self._state.api_key
        if expected is None or self.headers.get("Authorization") == f"Bearer {expected}":
            return True
        self._send_error(401, "Incorrect API key provided", None, None)
        return False

    def _wait_for_peers(self) -> bool:
        barrier = self._state.barrier
        if barrier is None:
            return True
        try:
            barrier.wait()
        except threading.BrokenBarrierError:
            self._send_error(500, "Too few concurrent requests reached the barrier", None, None)
            return False
        return True

    def _send_found(self, found: Optional[Dict[str, Any]]) -> None:
        if found is None:
            self._send_error(404, f"No route {self.path}", None, None)
        else:
            self._send_json(200, found)

    def _send_error(
        self, status: int, message: str, retry_after: Optional[float], param: Optional[str]
    ) -> None:
        body = {"error": {"message": message, "type": "fault", "param": param, "code": None}}
        headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
        self._send_json(status, body, headers)

    def _send_json(
        self, status: int, body: Dict[str, Any], headers: Optional[Dict[str, str]] = None
    ) -> None:
        self._send_bytes(status, json.dumps(body).encode(), "application/json", headers)

    def _send_bytes(
        self,
        status: int,
        payload: bytes,
        content_type: str,
        headers: Optional[Dict[str, str]] = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        for name, value in {**self._limit_headers, **(headers or {})}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)
        self._recorded.status = status


def _last_user_message(body: Dict[str, Any]) -> str:
    for message in reversed(body.get("messages") or []):
        if message.get("role") == "user":
            return str(message.get("content", ""))
    return ""


def _completion(body: Dict[str, Any], limit: Optional[int]) -> Dict[str, Any]:
    wanted = int(body.get("n") or 1)
    count = wanted if limit is None else min(wanted, limit)
    text = _last_user_message(body)
    contents = [f"echo {k}: {text}" for k in range(count)]
    prompt_words = sum(len(str(m.get("content", "")).split()) for m in body.get("messages", []))
    return {
        "id": "chatcmpl-fault",
        "object": "chat.completion",
        "created": 0,
        "model": body.get("model", ""),
        "choices": [
            {
                "index": k,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
            for k, content in enumerate(contents)
        ],
        "usage": {
            "prompt_tokens": prompt_words,
            "completion_tokens": sum(len(content.split()) for content in contents),
            "total_tokens": prompt_words + sum(len(content.split()) for content in contents),
        },
    }
