"""Regression tests for the ways a model process can hang or die that once broke a promise:
teardown and `model_name` waiting forever, pools returning `None` outputs, a poison row taking a
pool down, and "spread" waiting on a stopped member. Real child processes throughout."""

from __future__ import annotations

import os
import signal
import threading
from typing import Any, List

import pytest
from waiting import wait_until

from distilabel_llm.errors import PoolExhaustedError, ProcessLLMError
from distilabel_llm.llm import LLMPool, ProcessLLM
from distilabel_llm.llm.core.outputs import LLMOutput
from distilabel_llm.pipeline import Pipeline
from distilabel_llm.testing import FakeLLM

pytestmark = pytest.mark.timeout(60)

INPUTS = [{"input": f"q{i}"} for i in range(12)]
POISONED = [*INPUTS[:5], {"input": "poison"}, *INPUTS[5:]]


def _hang_on_load(task: Any) -> FakeLLM:
    threading.Event().wait()  # the model never loads
    raise AssertionError("unreachable")


def _member(task: Any, name: str, **kwargs: Any) -> ProcessLLM:
    return ProcessLLM(task, lambda task: FakeLLM(task, model_name=name, **kwargs))


def _loaded(*members: ProcessLLM) -> None:
    for member in members:
        member.wait_loaded()


def _stopped(member: ProcessLLM) -> ProcessLLM:
    """`member`, loaded, then frozen with SIGSTOP (teardown kills it all the same)."""
    member.wait_loaded()
    os.kill(member.pid, signal.SIGSTOP)
    return member


def _dead(member: ProcessLLM) -> ProcessLLM:
    """`member`, loaded, then SIGKILLed, once its failure is known."""
    member.wait_loaded()
    os.kill(member.pid, signal.SIGKILL)
    assert wait_until(lambda: member.failure is not None, 10.0)
    return member


def _check_complete(rows: List[List[LLMOutput]], inputs: List[dict], generations: int) -> None:
    """Every slot holds an output: text for each input, nothing silently `None`."""
    assert len(rows) == len(inputs)
    for row, input_row in zip(rows, inputs):
        assert len(row) == generations
        for output in row:
            assert output["raw_output"].endswith(f": {input_row['input']}"), output


# 1. Teardown never waits forever.


@pytest.mark.parametrize("frozen", ["stopped", "loading"])
def test_teardown_without_waiting_stops_a_frozen_child_while_another_teardown_waits(
    task, frozen: str
) -> None:
    if frozen == "stopped":
        llm = _stopped(ProcessLLM(task, FakeLLM))
    else:
        llm = ProcessLLM(task, _hang_on_load)
    future = llm.generate([{"input": "a"}])
    waiting = threading.Thread(target=llm.teardown)  # waits for `future`, which never comes
    waiting.start()
    assert wait_until(lambda: llm._closed, 5.0)
    llm.teardown(wait=False)
    with pytest.raises(ProcessLLMError, match="torn down"):
        future.result(timeout=5)
    waiting.join(10)
    assert not waiting.is_alive()


def test_a_load_that_takes_too_long_fails_like_any_load_failure(task) -> None:
    llm = ProcessLLM(task, _hang_on_load, load_timeout=0.5)
    future = llm.generate([{"input": "a"}])
    with pytest.raises(ProcessLLMError, match=r"did not load within load_timeout=0.5s"):
        future.result(timeout=10)
    with pytest.raises(ProcessLLMError, match="did not load"):
        _ = llm.model_name
    llm.teardown()  # the child is gone already: nothing to wait for
    with pytest.raises(ValueError, match="load_timeout"):
        ProcessLLM(task, FakeLLM, load_timeout=0)


# 2. Nothing waits on one member without a bound.


@pytest.mark.parametrize("strategy", ["spread", "balance"])
def test_a_pool_with_a_member_that_never_loads_runs_the_job_on_the_others(
    task, strategy: str
) -> None:
    pool = LLMPool(
        [ProcessLLM(task, _hang_on_load), _member(task, "a"), _member(task, "a")],
        strategy=strategy,
        stall_timeout=0.5,
    )
    try:
        assert pool.member_names[0] == "#0 loading"  # at once, never waiting
        rows = Pipeline(generator=pool).generate(INPUTS, display_progress_bar=False)
        assert [row["generations"] for row in rows] == [[f"a #0: {r['input']}"] for r in INPUTS]
        assert all(row["error"] is None for row in rows)
    finally:
        pool.teardown(wait=False)


# 3. A pool returns real outputs or raises: never `None`.


def test_spread_gives_a_dead_members_share_to_the_others(task) -> None:
    members = [_dead(_member(task, "a")), _member(task, "b"), _member(task, "c")]
    with LLMPool(members, strategy="spread", seed=0) as pool:
        rows = pool.generate(INPUTS, num_generations=3)
    _check_complete(rows, INPUTS, 3)
    assert {output["model_name"] for row in rows for output in row} == {"b", "c"}


@pytest.mark.parametrize("strategy", ["spread", "balance"])
def test_a_pool_with_no_live_member_raises_every_time(task, strategy: str) -> None:
    members = [_dead(_member(task, "a")), _dead(_member(task, "b"))]
    with LLMPool(members, strategy=strategy) as pool:
        for _ in range(2):
            with pytest.raises(PoolExhaustedError, match="Every member"):
                pool.generate(INPUTS)


# 4. A row that crashes its member is singled out.


@pytest.mark.parametrize(("strategy", "generations"), [("spread", 1), ("balance", 1)])
def test_a_poison_row_is_isolated_and_the_others_complete(
    task, strategy: str, generations: int
) -> None:
    members = [_member(task, name, exit_on="poison") for name in ("x", "y", "z")]
    _loaded(*members)
    with LLMPool(members, strategy=strategy, seed=3) as pool:
        rows = pool.generate(POISONED, num_generations=generations)
    poison = rows.pop(5)
    assert all(output["raw_output"] is None for output in poison)
    assert "pool members that died" in poison[0]["error"]
    assert "not sent again" in poison[0]["error"]
    _check_complete(rows, INPUTS, generations)
    assert sum(member.failure is None for member in members) == 1  # two crashes, then no more


@pytest.mark.parametrize("strategy", ["spread", "balance"])
def test_rows_in_flight_with_a_poison_row_at_two_deaths_fail_too_but_never_silently(
    task, strategy: str
) -> None:
    # With 2 generations a row may run on two members at once: both die together, and the
    # rows they shared cannot be told from the poison row. They fail with a reason (and a
    # resumed job retries them); the pool keeps its last member.
    members = [_member(task, name, exit_on="poison") for name in ("x", "y", "z")]
    _loaded(*members)
    with LLMPool(members, strategy=strategy, seed=3) as pool:
        rows = pool.generate(POISONED, num_generations=2)
    failed = {i for i, row in enumerate(rows) if any(o["raw_output"] is None for o in row)}
    assert 5 in failed and len(failed) < len(rows)
    for row in rows:
        for output in row:
            assert output["raw_output"] or "not sent again" in output["error"]
    assert sum(member.failure is None for member in members) == 1


@pytest.mark.parametrize("batch_size", [2, 4, 8])
def test_a_poison_row_through_a_pipeline_fails_alone_and_the_job_goes_on(
    task, tmp_path, batch_size: int
) -> None:
    # A job keeps several pool calls in flight, whose work a member's process merges into one
    # backend call: a suspect row must still run with nothing else on its member, so that the
    # second death is its own and no good row of another call dies with it.
    members = [_member(task, name, exit_on="poison") for name in ("x", "y", "z")]
    _loaded(*members)
    with LLMPool(members, strategy="balance") as pool:
        rows = Pipeline(generator=pool).generate(
            POISONED,
            batch_size=batch_size,
            checkpoint=tmp_path / "out.jsonl",
            display_progress_bar=False,
        )
    assert [row["input"] for row in rows] == [row["input"] for row in POISONED]
    failed = {i: row["error"] for i, row in enumerate(rows) if row["error"] is not None}
    assert list(failed) == [5], failed
    assert "pool members that died" in rows[5]["error"]
    assert sum(member.failure is None for member in members) == 1


def test_a_request_that_kills_the_child_twice_is_not_sent_a_third_time(task) -> None:
    with ProcessLLM(task, lambda task: FakeLLM(task, exit_on="poison"), max_restarts=5) as llm:
        with pytest.raises(ProcessLLMError, match="died twice") as raised:
            llm.generate([{"input": "poison"}]).result(timeout=30)
        assert raised.value.exit_code == 3
        assert llm.generate([{"input": "fine"}]).result(timeout=30)[0][0]["raw_output"]
        assert llm.failure is None and llm.max_restarts - llm._restarts_left == 2


# 5. "spread" never waits forever on a stopped member.


def test_spread_backs_up_a_stopped_member_with_its_own_model_at_once(task) -> None:
    members = [_member(task, "a"), _member(task, "a"), _member(task, "b")]
    _loaded(*members)
    pool = LLMPool(members, strategy="spread", seed=0, stall_timeout=None)
    try:
        _stopped(members[1])
        rows = pool.generate(INPUTS, num_generations=3)
        _check_complete(rows, INPUTS, 3)
        for row in rows:  # each row keeps both models
            assert {output["model_name"] for output in row} == {"a", "b"}
    finally:
        pool.teardown(wait=False)


def test_spread_backs_up_a_stopped_member_with_another_model_after_stall_timeout(task) -> None:
    members = [_member(task, "a"), _member(task, "b")]
    _loaded(*members)
    pool = LLMPool(members, strategy="spread", seed=0, stall_timeout=0.3)
    try:
        _stopped(members[1])
        rows = pool.generate(INPUTS, num_generations=2)
        _check_complete(rows, INPUTS, 2)
        assert {output["model_name"] for row in rows for output in row} == {"a"}
    finally:
        pool.teardown(wait=False)


def test_a_load_failure_is_summed_up_by_its_exception_not_its_last_line(task) -> None:
    def load(task: Any) -> FakeLLM:
        raise ValueError("Unknown architecture.\n\nYou can update with `pip install -U x`.")

    with ProcessLLM(task, load) as llm, pytest.raises(ProcessLLMError) as raised:
        _ = llm.model_name
    first_line = str(raised.value).splitlines()[0]
    assert "(ValueError: Unknown architecture.)" in first_line
