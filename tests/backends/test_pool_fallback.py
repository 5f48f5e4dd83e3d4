"""`LLMPool` of `OpenAILLM`s against real HTTP servers (our fault server): a member whose
server fails (5xx, 429) is cooled down and its rows are re-run on another member."""

from __future__ import annotations

import logging
from typing import Any, Iterator, List

import pytest

from distilabel_llm.llm import LLMPool
from distilabel_llm.tasks import TextGenerationTask

openai = pytest.importorskip("openai", reason="the `openai` extra is not installed")

from fault_server import Fault, FaultServer  # noqa: E402

from distilabel_llm.llm.backends.openai import OpenAILLM  # noqa: E402

pytestmark = pytest.mark.timeout(60)

INPUTS = [{"input": f"q{i}"} for i in range(6)]
DOWN = Fault(status=503)  # answered at once; the members make no retries of their own


@pytest.fixture
def servers() -> Iterator[List[FaultServer]]:
    """A primary's server and a backup's, each serving a model named after its role."""
    with FaultServer(models=["primary"]) as primary, FaultServer(models=["backup"]) as backup:
        yield [primary, backup]


def _member(server: FaultServer, model: str, **kwargs: Any) -> OpenAILLM:
    return OpenAILLM(
        TextGenerationTask(),
        model=model,
        api_key="test-key",
        base_url=server.url,
        max_retries=0,
        timeout=10.0,
        **kwargs,
    )


def _by_model(rows: List[List[dict]]) -> List[str]:
    return [output["model_name"] for row in rows for output in row]


def test_fallback_sends_nothing_more_to_a_primary_that_fails_until_its_cooldown_ends(
    servers: List[FaultServer], caplog
) -> None:
    primary, backup = servers
    primary.script(DOWN, DOWN)
    members = [_member(primary, "primary"), _member(backup, "backup")]
    with (
        caplog.at_level(logging.WARNING, logger="distilabel_llm"),
        LLMPool(members, strategy="fallback", cooldown=60) as pool,
    ):
        rows = pool.generate(INPUTS)
    assert [output.get("error") for row in rows for output in row] == [None] * len(INPUTS)
    assert _by_model(rows) == ["backup"] * len(INPUTS)
    assert [row[0]["raw_output"] for row in rows] == [f"echo 0: q{i}" for i in range(6)]
    # The primary had the first units and failed them; cooling down, it got no more.
    assert 1 <= len(primary.requests()) <= 2
    assert "member #0 failed for a transient reason" in caplog.text


def test_balance_reruns_rows_a_server_refused_on_the_other_member(
    servers: List[FaultServer],
) -> None:
    primary, backup = servers
    primary.rule("q0", Fault(status=429))
    members = [_member(primary, "primary"), _member(backup, "backup")]
    with LLMPool(members, strategy="balance", cooldown=0) as pool:
        rows = pool.generate(INPUTS, num_generations=2)
    assert [output.get("error") for row in rows for output in row] == [None] * 12
    assert rows[0][0]["model_name"] == rows[0][1]["model_name"] == "backup"
    assert set(_by_model(rows)) == {"primary", "backup"}  # no cooldown: both kept working


def test_every_server_down_ends_with_errors_not_a_hang(servers: List[FaultServer]) -> None:
    for server in servers:
        server.rule("q", DOWN)
    members = [_member(servers[0], "primary"), _member(servers[1], "backup")]
    with LLMPool(members, strategy="fallback", cooldown=0.01, max_cooldown=0.02) as pool:
        rows = pool.generate(INPUTS)
    for row in rows:
        (output,) = row
        assert output["raw_output"] is None and output["transient"] is True
    for server in servers:  # each row was tried on both members
        asked = [request.body["messages"][-1]["content"] for request in server.requests()]
        assert set(asked) >= {row["input"] for row in INPUTS}


def test_a_member_with_max_concurrency_takes_several_units_at_once(
    servers: List[FaultServer],
) -> None:
    """An API member runs its calls on its own event loop: the pool hands it a unit while
    another is in flight, instead of one at a time on a thread of the pool's."""
    primary, backup = servers
    for server in servers:
        server.hold_until_concurrent(2)  # a request waits for another to that server (else 500)
    members = [
        _member(primary, "primary", max_concurrency=4),
        _member(backup, "backup", max_concurrency=4),
    ]
    with LLMPool(members, strategy="balance", cooldown=0) as pool:
        rows = pool.generate([{"input": f"q{i}"} for i in range(8)])
    assert [output.get("error") for row in rows for output in row] == [None] * 8
    assert primary.max_in_flight >= 2 and backup.max_in_flight >= 2
