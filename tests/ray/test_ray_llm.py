"""`RayLLM`: results, progress, load failures, actor deaths and restarts, teardown."""

from __future__ import annotations

import functools
import sys
import threading
from concurrent.futures import Future
from pathlib import Path

import pytest
from waiting import wait_until

from distilabel_llm.errors import MissingExtraError, RayLLMError
from distilabel_llm.llm import RayLLM
from distilabel_llm.testing import FakeLLM

pytestmark = [pytest.mark.ray, pytest.mark.timeout(60)]

# Half a CPU each, so that a test can hold four actors on the 2-CPU cluster.
HALF = {"num_cpus": 0.5}


def _fake(task, name: str = "fake", max_restarts: int = 0, **kwargs) -> RayLLM:
    load = functools.partial(FakeLLM, model_name=name, **kwargs)
    return RayLLM(task, load, max_restarts=max_restarts, **HALF)


def test_generate_returns_a_future_of_rows_and_reports_progress(task) -> None:
    advances = []
    with _fake(task, "a") as llm:
        assert llm.return_futures
        assert llm.model_name == "a"
        assert llm.location.startswith("node ")
        future = llm.generate(
            [{"input": "x"}, {"input": "y"}],
            num_generations=3,
            progress_callback_func=lambda advance: advances.append(advance),
        )
        assert isinstance(future, Future)
        rows = future.result()
    assert [[output["raw_output"] for output in row] for row in rows] == [
        ["a #0: x", "a #1: x", "a #2: x"],
        ["a #0: y", "a #1: y", "a #2: y"],
    ]
    assert rows[0][0]["prompt_used"] == "sys\nx"
    assert advances == [6]


def test_many_calls_in_flight_resolve_in_order(task) -> None:
    with _fake(task) as llm:
        futures = [llm.generate([{"input": str(i)}]) for i in range(200)]
        assert [f.result()[0][0]["raw_output"] for f in futures] == [
            f"fake #0: {i}" for i in range(200)
        ]
        assert llm.in_flight == 0


class _BatchSizeLLM(FakeLLM):
    """Answers each row with the number of rows its model call got; touches `started` when
    its first call starts."""

    def __init__(self, task, started: str, **kwargs) -> None:
        super().__init__(task, **kwargs)
        self.started = started

    def _generate(self, inputs, num_generations=1):
        Path(self.started).touch()
        rows = super()._generate(inputs, num_generations)
        for row in rows:
            for output in row:
                output["raw_output"] = f"batch of {len(inputs)}"
        return rows


def test_calls_that_queue_while_the_model_works_share_one_model_call(task, tmp_path) -> None:
    started = tmp_path / "started"
    load = functools.partial(_BatchSizeLLM, started=str(started), latency=1.0)
    with RayLLM(task, load, **HALF) as llm:
        first = llm.generate([{"input": "first"}])
        assert wait_until(started.exists, 30)  # the model is busy with `first` from now on
        queued = [llm.generate([{"input": f"q{i}"}, {"input": f"r{i}"}]) for i in range(3)]
        assert first.result()[0][0]["raw_output"] == "batch of 1"
        for future in queued:
            assert [row[0]["raw_output"] for row in future.result()] == ["batch of 6"] * 2


def test_a_request_that_raises_fails_its_future_only(task) -> None:
    with _fake(task, raise_on="bad") as llm:
        failing = llm.generate([{"input": "bad"}])
        with pytest.raises(RuntimeError, match="told to fail on 'bad'"):
            failing.result()
        assert llm.generate([{"input": "good"}]).result()[0][0]["raw_output"] == "fake #0: good"
        assert llm.failure is None


def _fails_to_load(task):
    raise ValueError("no such checkpoint: /models/missing")


def test_load_failure_is_reported_with_the_actor_traceback(task) -> None:
    with RayLLM(task, _fails_to_load, **HALF) as llm:
        with pytest.raises(RayLLMError, match="no such checkpoint") as raised:
            llm.generate([{"input": "x"}]).result()
        assert "_fails_to_load" in raised.value.remote_traceback
        assert "Traceback in the Ray actor" in str(raised.value)
        with pytest.raises(RayLLMError, match="`load_llm_fn` failed"):
            _ = llm.model_name
        assert llm.failure is raised.value
        with pytest.raises(RayLLMError):  # fails at once, not after a round trip
            llm.generate([{"input": "y"}]).result(timeout=0)


def test_load_fn_must_return_an_llm(task) -> None:
    llm = RayLLM(task, lambda task: "not an llm", **HALF)
    with llm, pytest.raises(RayLLMError, match="must return a distilabel_llm `LLM`"):
        _ = llm.model_name


def test_an_actor_that_dies_fails_its_calls_for_good(task) -> None:
    with _fake(task, exit_on="die", latency=0.05) as llm:
        assert llm.model_name == "fake"
        queued = [llm.generate([{"input": "die"}]), llm.generate([{"input": "after"}])]
        for future in queued:
            with pytest.raises(RayLLMError, match=r"actor .* died \(pass `max_restarts`"):
                future.result()
        assert isinstance(llm.failure, RayLLMError)
        with pytest.raises(RayLLMError):
            llm.generate([{"input": "later"}]).result(timeout=0)


def test_a_killed_actor_is_restarted_and_its_calls_rerun(task, ray_cluster) -> None:
    with _fake(task, latency=0.3, max_restarts=1) as llm:
        assert llm.model_name == "fake"
        futures = [llm.generate([{"input": str(i)}]) for i in range(3)]
        ray_cluster.kill(llm.actor, no_restart=False)
        assert [f.result()[0][0]["raw_output"] for f in futures] == [
            f"fake #0: {i}" for i in range(3)
        ]
        assert llm.failure is None


def test_teardown_lets_calls_in_flight_finish(task) -> None:
    llm = _fake(task, latency=0.2)
    futures = [llm.generate([{"input": str(i)}]) for i in range(3)]
    llm.teardown()
    assert all(future.done() and future.exception() is None for future in futures)
    with pytest.raises(RuntimeError, match="torn down"):
        llm.generate([{"input": "x"}])
    llm.teardown()  # idempotent


def test_teardown_without_waiting_fails_calls_in_flight(task) -> None:
    llm = _fake(task, latency=5)
    assert llm.model_name == "fake"
    future = llm.generate([{"input": "x"}])
    llm.teardown(wait=False)
    with pytest.raises(RayLLMError, match="torn down before this finished"):
        future.result(timeout=0)


def test_teardown_without_waiting_overtakes_a_waiting_teardown(task) -> None:
    llm = _fake(task, latency=30)
    future = llm.generate([{"input": "x"}])
    waiting = threading.Thread(target=llm.teardown)  # would wait 30 s for `future`
    waiting.start()
    assert wait_until(lambda: llm._closed, 5.0)
    llm.teardown(wait=False)
    with pytest.raises(RayLLMError, match="torn down before this finished"):
        future.result(timeout=5)
    waiting.join(10)
    assert not waiting.is_alive()


def _hang_on_load(task):
    threading.Event().wait()


def test_a_load_that_takes_too_long_fails_and_frees_the_actor(task) -> None:
    llm = RayLLM(task, _hang_on_load, load_timeout=1.0, **HALF)
    future = llm.generate([{"input": "x"}])
    with pytest.raises(RayLLMError, match=r"did not load within load_timeout=1.0s"):
        future.result(timeout=20)
    with pytest.raises(RayLLMError, match="did not load"):
        _ = llm.model_name
    llm.teardown()


def test_teardown_before_the_model_loads_unblocks_model_name(task) -> None:
    llm = RayLLM(task, lambda task: FakeLLM(task), **HALF)
    llm.teardown(wait=False)
    with pytest.raises(RayLLMError):
        _ = llm.model_name


def test_leaving_a_with_block_by_an_exception_stops_at_once(task) -> None:
    with pytest.raises(KeyError), _fake(task, latency=5) as llm:
        future = llm.generate([{"input": "x"}])
        raise KeyError("interrupted")
    assert isinstance(future.exception(timeout=0), RayLLMError)


def test_a_cancelled_call_is_dropped_and_the_calls_after_it_still_run(task) -> None:
    with _fake(task, latency=0.1) as llm:
        first = llm.generate([{"input": "first"}])
        second = llm.generate([{"input": "second"}])
        third = llm.generate([{"input": "third"}])
        assert second.cancel()
        assert llm.in_flight == 2
        assert first.result()[0][0]["raw_output"] == "fake #0: first"
        assert third.result(timeout=10)[0][0]["raw_output"] == "fake #0: third"
        assert llm.in_flight == 0


def test_resources_the_cluster_cannot_hold_fail_at_once(task) -> None:
    with pytest.raises(ValueError, match=r"cannot hold 1 actor\(s\) asking for .*'GPU': 1\.0"):
        RayLLM(task, lambda task: FakeLLM(task), num_gpus=1)
    with pytest.raises(ValueError, match="custom_accelerator"):
        RayLLM(task, lambda task: FakeLLM(task), resources={"custom_accelerator": 1})
    with pytest.raises(ValueError, match="`num_cpus` must be 0 or more"):
        RayLLM(task, lambda task: FakeLLM(task), num_cpus=-1)


def test_a_load_fn_that_cannot_be_pickled_is_refused(task) -> None:
    import threading

    lock = threading.Lock()
    with pytest.raises(TypeError, match="serialisable with cloudpickle"):
        RayLLM(task, lambda task: lock)


def test_missing_ray_names_the_extra(task, monkeypatch) -> None:
    from distilabel_llm.llm.members._ray_cluster import import_ray

    monkeypatch.setitem(sys.modules, "ray", None)  # nothing real can be uninstalled mid-test
    with pytest.raises(MissingExtraError, match=r"pip install 'distilabel_llm\[ray\]'"):
        import_ray()


def test_the_actor_loads_once_and_unloads_at_teardown(task, tmp_path) -> None:
    from recording_llm import RecordingLLM

    log = tmp_path / "log"
    llm = RayLLM(task, functools.partial(RecordingLLM, log=str(log)), **HALF)
    for _ in range(3):
        assert llm.generate([{"input": "x"}]).result(timeout=30)[0][0]["raw_output"]
    llm.teardown()
    assert log.read_text().split() == ["load", "unload"]


def test_generate_outputs_through_an_actor(task) -> None:
    with _fake(task) as llm:
        results = llm.generate_outputs([[{"role": "user", "content": "hi"}]], num_generations=2)
    assert results == [
        {
            "generations": ["fake #0: ", "fake #1: "],
            "statistics": {"input_tokens": [4, 4], "output_tokens": [2, 2]},
            "errors": [None, None],
        }
    ]
