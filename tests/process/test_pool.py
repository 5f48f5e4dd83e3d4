"""`LLMPool`: validation, both strategies' row shapes, progress, failover, helpers."""

from __future__ import annotations

import logging
import os
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import List

import pytest

from distilabel_llm import TextGenerationTask
from distilabel_llm.errors import PoolExhaustedError
from distilabel_llm.llm import LLMPool, ProcessLLM
from distilabel_llm.tasks import UltraFeedbackTask
from distilabel_llm.testing import FakeLLM

pytestmark = pytest.mark.timeout(90)

INPUTS = [{"input": f"q{i}"} for i in range(12)]


def _member(task, name: str, **kwargs) -> ProcessLLM:
    return ProcessLLM(task, lambda task: FakeLLM(task, model_name=name, **kwargs))


def _check_shape(rows, num_generations: int) -> None:
    assert len(rows) == len(INPUTS)
    for position, row in enumerate(rows):
        assert len(row) == num_generations
        for output in row:
            assert output["raw_output"].endswith(f": q{position}")


class _Task(TextGenerationTask):
    pass


class _Sibling(TextGenerationTask):
    pass


def test_pool_arguments_are_validated(task) -> None:
    with pytest.raises(ValueError, match="must contain at least 2"):
        LLMPool([FakeLLM(task)])
    with pytest.raises(ValueError, match="must contain only `ProcessLLM`s"):
        LLMPool([FakeLLM(task), "not an llm"])
    with pytest.raises(ValueError, match="must share the same task"):
        LLMPool([FakeLLM(TextGenerationTask()), FakeLLM(UltraFeedbackTask())])
    with pytest.raises(ValueError, match="strategy"):
        LLMPool([FakeLLM(task), FakeLLM(task)], strategy="fastest")
    LLMPool([FakeLLM(_Task()), FakeLLM(_Sibling())])  # siblings of one parent
    LLMPool([FakeLLM(TextGenerationTask()), FakeLLM(_Task())])  # a task and its subclass


@pytest.mark.parametrize("num_generations", [1, 2, 3, 5])
def test_spread_gives_every_row_a_mix_of_the_models(task, num_generations: int) -> None:
    with LLMPool([_member(task, "a"), _member(task, "b")], strategy="spread", seed=0) as pool:
        rows = pool.generate(INPUTS, num_generations=num_generations)
    _check_shape(rows, num_generations)
    base = num_generations // 2
    for row in rows:
        counts = Counter(output["model_name"] for output in row)
        assert set(counts.values()) <= {base, base + 1}
        names = [output["model_name"] for output in row]
        assert names == sorted(names)  # grouped by member, in member order
    totals = Counter(output["model_name"] for row in rows for output in row)
    assert abs(totals["a"] - totals["b"]) <= 1 or num_generations % 2 == 0


@pytest.mark.parametrize("num_generations", [1, 4])
def test_balance_uses_every_member(task, num_generations: int) -> None:
    members = [_member(task, name, latency_per_generation=0.005) for name in "abc"]
    with LLMPool(members, strategy="balance") as pool:
        rows = pool.generate(INPUTS * 4, num_generations=num_generations)
    assert len(rows) == 4 * len(INPUTS)
    assert all(len(row) == num_generations for row in rows)
    assert {output["model_name"] for row in rows for output in row} == {"a", "b", "c"}


@pytest.mark.parametrize("strategy", ["spread", "balance"])
def test_progress_accounts_for_every_generation(task, strategy: str) -> None:
    advances: List[int] = []
    per_member = Counter()

    def on_member(member: int, advance: int) -> None:
        per_member[member] += advance

    with LLMPool([_member(task, "a"), _member(task, "b")], strategy=strategy) as pool:
        rows = pool.generate(
            INPUTS,
            num_generations=3,
            progress_callback_func=lambda advance: advances.append(advance),
            member_progress_callback_func=on_member,
        )
    _check_shape(rows, 3)
    assert sum(advances) == len(INPUTS) * 3
    assert sum(per_member.values()) == len(INPUTS) * 3
    made_by = Counter(output["model_name"] for row in rows for output in row)
    assert per_member[0] == made_by["a"] and per_member[1] == made_by["b"]


def test_plain_llms_can_be_members(task) -> None:
    pool = LLMPool([FakeLLM(task, model_name="a"), FakeLLM(task, model_name="b", num_threads=2)])
    rows = pool.generate(INPUTS, num_generations=2)
    pool.teardown()
    _check_shape(rows, 2)


@pytest.mark.parametrize("strategy", ["spread", "balance"])
def test_a_member_that_dies_has_its_work_rerun_on_the_others(task, strategy, caplog) -> None:
    members = [
        _member(task, "dies", exit_on="q"),
        _member(task, "a", latency_per_generation=0.01),
        _member(task, "b", latency_per_generation=0.01),
    ]
    for member in members[1:]:
        _ = member.model_name  # all loaded: the dying member gets its units at once
    with (
        caplog.at_level(logging.WARNING, logger="distilabel_llm"),
        LLMPool(members, strategy=strategy, seed=1) as pool,
    ):
        rows = pool.generate(INPUTS, num_generations=3)
    _check_shape(rows, 3)
    assert "failed for good" in caplog.text
    assert pool.llms[0].failure is not None


def test_a_member_that_fails_to_load_is_left_out(task) -> None:
    def broken(task):
        raise OSError("CUDA out of memory")

    with LLMPool([ProcessLLM(task, broken), _member(task, "a")], strategy="balance") as pool:
        rows = pool.generate(INPUTS, num_generations=2)
    _check_shape(rows, 2)
    assert {output["model_name"] for row in rows for output in row} == {"a"}


def test_the_job_fails_only_when_no_member_is_left_and_says_why(task) -> None:
    members = [_member(task, "x", exit_on="q1"), _member(task, "y", exit_on="q1")]
    with (
        LLMPool(members, strategy="balance") as pool,
        pytest.raises(PoolExhaustedError, match="Every member of the LLMPool failed") as caught,
    ):
        pool.generate(INPUTS)
    assert "exit code 3" in str(caught.value)


def test_an_error_in_a_request_reaches_the_caller(task) -> None:
    members = [_member(task, "a", raise_on="q3"), _member(task, "b", raise_on="q3")]
    with LLMPool(members, strategy="balance") as pool, pytest.raises(RuntimeError, match="q3"):
        pool.generate(INPUTS)


class _GpuLLM(FakeLLM):
    @property
    def uses_gpu(self) -> bool:
        return True


def test_from_devices_pins_one_gpu_per_member(task) -> None:
    def load(task):
        device = os.environ["CUDA_VISIBLE_DEVICES"]
        return _GpuLLM(task, model_name=f"gpu{device}", latency_per_generation=0.01)

    with LLMPool.from_devices(task, load, devices=[0, 1]) as pool:
        assert pool.strategy == "balance"
        for member in pool.llms:
            member.wait_loaded()
        assert pool.member_names == ["#0 gpu0 (GPU 0)", "#1 gpu1 (GPU 1)"]
        rows = pool.generate(INPUTS * 2)
    assert {output["model_name"] for row in rows for output in row} == {"gpu0", "gpu1"}


def test_from_replicas_and_empty_inputs(task) -> None:
    with LLMPool.from_replicas(task, FakeLLM, replicas=2) as pool:
        for member in pool.llms:
            member.wait_loaded()
        assert pool.member_names == ["#0 fake (CPU)", "#1 fake (CPU)"]  # no GPU in use
        assert pool.generate([]) == []
        assert len(pool.llms) == 2 and pool.task is task
        assert pool.return_futures is False


@pytest.mark.parametrize("plain", [False, True])
def test_concurrent_calls_share_the_pool(task, plain: bool) -> None:
    if plain:
        members = [FakeLLM(task, model_name=name, latency_per_generation=0.002) for name in "ab"]
    else:
        members = [_member(task, name, latency_per_generation=0.002) for name in "ab"]
    with LLMPool(members, strategy="balance") as pool, ThreadPoolExecutor(3) as callers:
        futures = [callers.submit(pool.generate, INPUTS, 2) for _ in range(3)]
        for future in futures:
            _check_shape(future.result(timeout=60), 2)


def test_replicas_share_the_cores_unless_told_otherwise(task, monkeypatch) -> None:
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)

    def load(task):
        threads = f"{os.environ['OMP_NUM_THREADS']}/{os.environ['MKL_NUM_THREADS']}"
        return FakeLLM(task, model_name=threads)

    share = str(max(1, (os.cpu_count() or 1) // 2))
    with LLMPool.from_replicas(task, load, replicas=2) as pool:
        assert {llm.model_name for llm in pool.llms} == {f"{share}/{share}"}
    with LLMPool.from_devices(task, load, devices=[0, 1], env={"OMP_NUM_THREADS": 7}) as pool:
        assert {llm.model_name for llm in pool.llms} == {f"7/{share}"}


def test_tearing_down_mid_call_fails_the_call_without_failover(task, caplog) -> None:
    members = [_member(task, name, latency_per_generation=0.05) for name in "ab"]
    pool = LLMPool(members, strategy="balance")
    started = threading.Event()
    with ThreadPoolExecutor(1) as caller, caplog.at_level(logging.WARNING, "distilabel_llm"):
        call = caller.submit(
            pool.generate, INPUTS * 4, progress_callback_func=lambda advance: started.set()
        )
        assert started.wait(30)
        pool.teardown(wait=False)
        with pytest.raises(RuntimeError, match="torn down before this call finished"):
            call.result(timeout=30)
    assert "failed for good" not in caplog.text
    with pytest.raises(RuntimeError, match="torn down"):
        pool.generate(INPUTS)


@pytest.mark.timeout(60)
def test_a_pool_torn_down_at_once_fails_its_calls_as_torn_down() -> None:
    """In-process members stop taking work at once: the calls in flight and those queued on
    the pool fail saying so, never with generations left unfilled."""
    started, release = threading.Event(), threading.Event()

    class Gated(FakeLLM):
        def _generate(self, inputs, num_generations=1, generation_kwargs=None):  # type: ignore[no-untyped-def]
            started.set()
            release.wait(10)
            return super()._generate(inputs, num_generations, generation_kwargs)

    task = TextGenerationTask()
    pool = LLMPool([Gated(task), Gated(task)], strategy="balance")
    futures = [
        pool.submit([{"input": f"r{i}"} for i in range(4)]) for _ in range(pool.calls_ahead + 2)
    ]
    assert started.wait(10)
    pool.teardown(wait=False)
    release.set()
    failures = []
    for future in futures:
        try:
            assert len(future.result(timeout=10)) == 4
        except RuntimeError as error:
            failures.append(str(error))
    assert failures and all("torn down" in failure for failure in failures), failures
