"""`LLMPool` cooldowns and fallbacks: a member that fails for a transient reason rests while
the others take its rows, and is tried again; "fallback" keeps to its primary while it can.

Members are `FakeLLM`s whose outputs are marked `transient` on demand, as an API backend marks
a request its client's retries could not save. Waits are on events, never on sleeps: a member
that must wait for another's recovery holds its call until that member answers again.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Dict, List, Optional

import pytest

from distilabel_llm.llm import LLMPool, ProcessLLM
from distilabel_llm.llm.core.outputs import LLMOutput
from distilabel_llm.llm.core.settings import GenerationSettings
from distilabel_llm.llm.pool._units import Unit, retry_units
from distilabel_llm.testing import FakeLLM

pytestmark = pytest.mark.timeout(60)

INPUTS = [{"input": f"q{i}"} for i in range(12)]
# Short enough that a test never waits long, long enough to be a real rest.
COOLDOWN = 0.05


class _Watched(FakeLLM):
    """A `FakeLLM` that records the rows of its calls that failed for a transient reason, sets
    `recovered` when a call succeeds after such a failure, and with `gate` holds every call
    until that event is set (at most 30 s)."""

    def __init__(self, *args: Any, gate: Optional[threading.Event] = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.gate = gate
        self.failed: List[str] = []
        self.recovered = threading.Event()

    def _generate(
        self,
        inputs: List[Dict[str, Any]],
        num_generations: int = 1,
        generation_kwargs: Optional[GenerationSettings] = None,
    ) -> List[List[LLMOutput]]:
        if self.gate is not None:
            assert self.gate.wait(30), "the member held at the gate was never let through"
        rows = super()._generate(inputs, num_generations, generation_kwargs)
        failed = [row["input"] for row, outputs in zip(inputs, rows) if outputs[0].get("error")]
        self.failed.extend(failed)
        if self.failed and not failed:
            self.recovered.set()
        return rows


def _check_written_by_their_model(rows: List[List[LLMOutput]]) -> None:
    """Every output that has text names the model that wrote it (FakeLLM's text starts with
    its model's name)."""
    for position, row in enumerate(rows):
        for output in row:
            if output["raw_output"] is not None:
                assert output["raw_output"].startswith(output["model_name"] + " #")
                assert output["raw_output"].endswith(f": q{position}")


def _errors(rows: List[List[LLMOutput]]) -> List[str]:
    return [output["error"] for row in rows for output in row if output.get("error")]


def test_the_strategy_and_cooldowns_are_validated(task) -> None:
    members = [FakeLLM(task), FakeLLM(task)]
    with pytest.raises(ValueError, match="'spread', 'balance' or 'fallback'"):
        LLMPool(members, strategy="fastest")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="`cooldown` must be 0 or more seconds"):
        LLMPool(members, cooldown=-1)
    with pytest.raises(ValueError, match="`max_cooldown`"):
        LLMPool(members, max_cooldown=float("nan"))
    LLMPool(members, strategy="fallback", cooldown=0).teardown()


def test_retry_units_rerun_only_the_failed_span_of_each_row() -> None:
    def output(transient: bool) -> Dict[str, Any]:
        return {"error": "429", "transient": True} if transient else {"raw_output": "ok"}

    unit = Unit([4, 5, 6], [2, 2, 2], 3, origin=1, avoid={0})
    answer = [
        [output(False), output(True), output(True)],  # row 4: slots 3 and 4
        [output(False)] * 3,  # row 5: nothing to re-run
        [output(False), output(True), output(True)],  # row 6: the same span as row 4
    ]
    (retry,) = retry_units(unit, answer, member=2)
    assert (retry.rows, retry.offsets, retry.num_generations) == ([4, 6], [3, 3], 2)
    assert retry.avoid == {0, 2} and retry.origin == 1 and unit.avoid == {0}


def test_a_rate_limited_member_rests_and_comes_back_while_the_other_takes_its_rows(
    task, caplog
) -> None:
    # "a" fails its first two calls; "b" holds its calls until "a" has answered again,
    # which it can only do once its cooldown has ended.
    a = _Watched(task, model_name="a", transient_calls=2)
    b = _Watched(task, model_name="b", gate=a.recovered)
    with (
        caplog.at_level(logging.INFO, logger="distilabel_llm"),
        LLMPool([a, b], strategy="balance", cooldown=COOLDOWN) as pool,
    ):
        rows = pool.generate(INPUTS)  # one unit per row
    assert _errors(rows) == []
    _check_written_by_their_model(rows)
    assert len(a.failed) == 2
    for failed in a.failed:  # re-run on the other member, not the one that failed them
        assert {output["model_name"] for output in rows[int(failed[1:])]} == {"b"}
    made_by = Counter(output["model_name"] for row in rows for output in row)
    assert made_by["a"] > 0 and made_by["b"] > 0  # "a" came back after its cooldown
    assert "member #0 failed for a transient reason" in caplog.text
    assert "member #0 answers again" in caplog.text


def test_balance_reruns_a_row_that_failed_transiently_on_another_member(task) -> None:
    # Members take units in their order, so "a" gets the first row; it fails there for good.
    a = _Watched(task, model_name="a", transient_on="q0")
    b = _Watched(task, model_name="b")
    with LLMPool([a, b], strategy="balance", cooldown=COOLDOWN) as pool:
        rows = pool.generate(INPUTS, num_generations=3)
    assert a.failed[0] == "q0" and "q0" not in b.failed
    assert [output["raw_output"] for output in rows[0]] == [f"b #{k}: q0" for k in range(3)]
    assert _errors(rows) == []
    _check_written_by_their_model(rows)


def test_fallback_keeps_to_the_primary_falls_back_and_returns_to_it(task, caplog) -> None:
    primary = _Watched(task, model_name="primary")
    backup = _Watched(task, model_name="backup", gate=primary.recovered)
    with (
        caplog.at_level(logging.INFO, logger="distilabel_llm"),
        LLMPool([primary, backup], strategy="fallback", cooldown=COOLDOWN) as pool,
    ):
        healthy = pool.generate(INPUTS, num_generations=2)
        assert {output["model_name"] for row in healthy for output in row} == {"primary"}
        assert backup.calls == 0  # a backup is not used while the primary answers

        primary.transient_calls = primary.calls + 2  # its next two calls are refused
        rows = pool.generate(INPUTS)  # one unit per row
    assert _errors(rows) == []
    _check_written_by_their_model(rows)
    assert len(primary.failed) == 2
    for failed in primary.failed:
        assert {output["model_name"] for output in rows[int(failed[1:])]} == {"backup"}
    made_by = Counter(output["model_name"] for row in rows for output in row)
    assert made_by["backup"] > 0 and made_by["primary"] > 0
    assert "member #0 answers again" in caplog.text


def test_fallback_goes_down_its_order(task) -> None:
    first = _Watched(task, model_name="first", transient_on="q")
    second = _Watched(task, model_name="second", transient_on="q")
    third = _Watched(task, model_name="third")
    with LLMPool([first, second, third], strategy="fallback", cooldown=COOLDOWN) as pool:
        rows = pool.generate(INPUTS[:4])
    assert _errors(rows) == []
    assert {output["model_name"] for row in rows for output in row} == {"third"}
    assert first.failed[0] == "q0" and second.failed  # tried in their order


@pytest.mark.parametrize("strategy", ["balance", "fallback", "spread"])
def test_every_member_failing_ends_with_errors_not_a_hang(task, strategy: str) -> None:
    members = [_Watched(task, model_name=name, transient_on="q") for name in "ab"]
    with LLMPool(members, strategy=strategy, cooldown=0.01, max_cooldown=0.02) as pool:
        rows = pool.generate(INPUTS[:6], num_generations=2)
    assert len(rows) == 6 and all(len(row) == 2 for row in rows)
    for row in rows:
        for output in row:
            assert output["raw_output"] is None and output["transient"] is True
            assert "429" in output["error"]
    if strategy == "spread":  # a row's share is its model's: no other member of it to try
        assert all(members[0].failed.count(f"q{i}") == 1 for i in range(6))
    else:  # each row was tried on both members before keeping its error
        for member in members:
            assert set(member.failed) == {f"q{i}" for i in range(6)}


def test_spread_reruns_a_share_on_a_member_of_the_same_model_only(task) -> None:
    failing = _Watched(task, model_name="a", transient_on="q")
    twin = _Watched(task, model_name="a")
    other = _Watched(task, model_name="b")
    with LLMPool([failing, twin, other], strategy="spread", seed=0, cooldown=COOLDOWN) as pool:
        rows = pool.generate(INPUTS, num_generations=3)
    assert _errors(rows) == []
    _check_written_by_their_model(rows)
    # The failing member's share was made by its twin: every row keeps its mix of models.
    for row in rows:
        assert Counter(output["model_name"] for output in row) == {"a": 2, "b": 1}
    assert not other.failed

    alone = _Watched(task, model_name="a", transient_on="q7")
    members = [alone, _Watched(task, model_name="b")]
    with LLMPool(members, strategy="spread", seed=0, cooldown=COOLDOWN) as pool:
        rows = pool.generate(INPUTS, num_generations=2)
    assert [output["model_name"] for output in rows[7]] == ["a", "b"]
    assert rows[7][0]["transient"] is True and rows[7][1]["raw_output"] == "b #1: q7"
    assert len(_errors(rows)) == 1


def test_concurrent_calls_share_a_member_s_cooldown(task) -> None:
    a = _Watched(task, model_name="a", transient_calls=3)
    b = _Watched(task, model_name="b", latency=0.002)
    with (
        LLMPool([a, b], strategy="balance", cooldown=COOLDOWN) as pool,
        ThreadPoolExecutor(3) as callers,
    ):
        calls = [callers.submit(pool.generate, INPUTS, 2) for _ in range(3)]
        results = [call.result(timeout=30) for call in calls]
    for rows in results:
        assert _errors(rows) == []
        _check_written_by_their_model(rows)
    assert len(a.failed) >= 3


def test_process_members_carry_the_transient_mark_and_the_pool_finishes(task, caplog) -> None:
    members = [
        ProcessLLM(task, lambda task: FakeLLM(task, model_name="a", transient_calls=1)),
        # Slower, so that "a" runs its units rather than "b" backing them all up first.
        ProcessLLM(task, lambda task: FakeLLM(task, model_name="b", latency=0.01)),
    ]
    with (
        caplog.at_level(logging.WARNING, logger="distilabel_llm"),
        LLMPool(members, strategy="balance", cooldown=COOLDOWN) as pool,
    ):
        for member in pool.llms:
            member.wait_loaded(30)  # both loaded: "a" gets its units at once
        rows = pool.generate(INPUTS, num_generations=2)
    assert _errors(rows) == []
    _check_written_by_their_model(rows)
    assert "member #0 failed for a transient reason" in caplog.text
