"""What `OpenAILLM` needs around the `openai` client: building the async client, reading a
completion's choices, saying how a failed request's retries went, and keeping a password in a
base URL out of every message."""

from __future__ import annotations

import os
import urllib.parse
from typing import Any, Dict, List, Optional, Tuple, Union

from distilabel_llm.llm.backends._rate_limits import MAX_PAUSE_S
from distilabel_llm.llm.backends._retries import Retries
from distilabel_llm.llm.core.outputs import TokenStatistics, token_count
from distilabel_llm.tasks.prompt import ChatMessages

__all__ = [
    "async_client",
    "read_completion",
    "redact",
    "redact_url",
    "retries_made",
    "retries_spent",
    "seconds",
]

_DEFAULT_MAX_RETRIES = 5
_DEFAULT_TIMEOUT = 120.0
# The model check at construction should fail fast, not wait out a long retry schedule.
MODEL_CHECK_TIMEOUT = 10.0


def async_client(
    openai_module: Any,
    client: Any,
    api_key: Optional[str],
    base_url: Optional[str],
    max_retries: Optional[int],
    timeout: Optional[float],
) -> Tuple[Any, bool]:
    """The async client to use, and whether this LLM made it (and so must close it)."""
    options: Dict[str, Any] = {}
    if max_retries is not None:
        options["max_retries"] = max_retries
    if timeout is not None:
        options["timeout"] = timeout
    if client is not None:
        if api_key is not None or base_url is not None:
            raise ValueError("Pass either `client` or `api_key`/`base_url`, not both.")
        if isinstance(client, openai_module.AsyncOpenAI):
            return (client.with_options(**options) if options else client), False
        if isinstance(client, openai_module.OpenAI):
            copied = {
                "api_key": client.api_key,
                "organization": client.organization,
                "project": client.project,
                "base_url": client.base_url,
                "timeout": client.timeout,
                "max_retries": client.max_retries,
            }
            return openai_module.AsyncOpenAI(**{**copied, **options}), True
        raise TypeError(
            f"`client` must be an openai.AsyncOpenAI or openai.OpenAI, not {type(client).__name__}."
        )
    api_key = api_key or os.environ.get("OPENAI_API_KEY")
    if not api_key:
        raise ValueError(
            "OpenAILLM needs an API key: pass `api_key=...` or set OPENAI_API_KEY. A local "
            "server that takes no key (llama.cpp, vLLM, Ollama) accepts any text, e.g. "
            "api_key='none'."
        )
    options.setdefault("max_retries", _DEFAULT_MAX_RETRIES)
    options.setdefault("timeout", _DEFAULT_TIMEOUT)
    return openai_module.AsyncOpenAI(api_key=api_key, base_url=base_url, **options), True


def read_completion(
    completion: Any,
) -> List[Tuple[Optional[str], Optional[TokenStatistics], Optional[str]]]:
    """Each choice's text, its share of the token counts the server reported, and why it has no
    text when its content is null (a refusal, a tool call, a filtered answer) or not a string.

    A usage count that is not a non-negative integer is left out of the statistics; the text is
    kept."""
    choices = getattr(completion, "choices", None)
    if not isinstance(choices, list):
        raise ValueError(
            f"The server's response is not a chat completion: {str(completion)[:200]!r}"
        )
    usage = getattr(completion, "usage", None)
    prompt_tokens = token_count(getattr(usage, "prompt_tokens", None))
    completion_tokens = token_count(getattr(usage, "completion_tokens", None))
    share, remainder = divmod(completion_tokens or 0, len(choices) or 1)
    read = []
    for position, choice in enumerate(choices):
        message = getattr(choice, "message", None)
        text = getattr(message, "content", None)
        statistics = TokenStatistics()
        if prompt_tokens is not None:
            statistics["input_tokens"] = prompt_tokens
        if completion_tokens is not None:
            statistics["output_tokens"] = share + (1 if position < remainder else 0)
        read.append((text if isinstance(text, str) else None, statistics or None, _why(choice)))
    return read


def _why(choice: Any) -> Optional[str]:
    """Why a choice has no usable text (None when it has one)."""
    message = getattr(choice, "message", None)
    text = getattr(message, "content", None)
    if isinstance(text, str):
        return None
    if text is not None:
        return (
            f"the server returned content of type {type(text).__name__} for this choice, not "
            f"text: {text!r:.100}"
        )
    refusal = getattr(message, "refusal", None)
    return (
        f"the server returned no text for this choice (finish_reason="
        f"{getattr(choice, 'finish_reason', None)!r}"
        + (f", refusal: {refusal!r})" if refusal else ")")
    )


def retries_made(error: Exception, max_retries: int) -> str:
    """How the `openai` client's own retries of a failed request went (an offline batch job's
    requests: chat requests are retried by `AsyncLLM`'s loop, see `retries_spent`), for its
    error message: "after 2 retries", or why the client made fewer than `max_retries` (a
    `Retry-After` longer than it waits)."""
    request_headers = getattr(getattr(error, "request", None), "headers", None) or {}
    try:  # the client numbers each attempt's retries in this header
        made = int(request_headers.get("x-stainless-retry-count"))
    except (TypeError, ValueError):
        return f"after {max_retries} retries"
    if made >= max_retries:
        return f"after {made} retries"
    wait = _retry_after(getattr(getattr(error, "response", None), "headers", None) or {})
    if wait is None:
        return f"after {made} of {max_retries} retries (the client made no more)"
    stopped = "no retry was made" if made == 0 else f"it stopped after {made} retries"
    return (
        f"(the server asked {wait} with Retry-After, longer than the openai client waits, so "
        f"{stopped})"
    )


def retries_spent(retries: Retries) -> str:
    """How our retry loop's retries of a failed request went, for its error message: "after 2
    retries", or why it stopped early (a `Retry-After` longer than it waits)."""
    if retries.refused_wait is None:
        return f"after {retries.made} retries"
    made = retries.made
    stopped = "no retry was made" if made == 0 else f"it stopped after {made} retries"
    return (
        f"(the server asked to wait {retries.refused_wait:g} s with Retry-After, longer than "
        f"the {MAX_PAUSE_S:g} s waited at most, so {stopped})"
    )


def _retry_after(headers: Any) -> Optional[str]:
    """The wait a response's `Retry-After` (or `retry-after-ms`) asks for, in words."""
    for name, unit in (("retry-after-ms", 1000), ("retry-after", 1)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return f"to wait {float(value) / unit:g} s"
        except ValueError:  # an HTTP date
            return f"to retry at {value}"
    return None


def redact_url(url: str) -> str:
    """`url` with its password, if it has one, replaced by `***`."""
    parts = urllib.parse.urlsplit(url)
    if not parts.password:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def redact(text: str, url: str) -> str:
    """`text` with the password of `url` masked wherever it appears."""
    password = urllib.parse.urlsplit(url).password
    return text.replace(password, "***") if password else text


def seconds(timeout: Any) -> float:
    """A client timeout (a number or an httpx Timeout) as seconds; the check's own if unset."""
    if isinstance(timeout, (int, float)):
        return float(timeout)
    read = getattr(timeout, "read", None)
    return float(read) if isinstance(read, (int, float)) else MODEL_CHECK_TIMEOUT


def chat_messages(prompt: Union[str, ChatMessages]) -> ChatMessages:
    """`prompt` as chat messages: a string becomes one user message."""
    return prompt if isinstance(prompt, list) else [{"role": "user", "content": prompt}]
