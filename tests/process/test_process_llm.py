"""`ProcessLLM`: results, failures delivered (never hung on), restarts, timeouts, teardown."""

from __future__ import annotations

import functools
import logging
import multiprocessing
import os
import pickle
import resource
import signal
import subprocess
import sys
import textwrap
import threading
from concurrent.futures import Future
from pathlib import Path

import cloudpickle
import pytest
from process_helpers import GatedLLM, gated_load
from waiting import wait_until

from distilabel_llm.errors import ProcessLLMError
from distilabel_llm.llm import ProcessLLM
from distilabel_llm.llm.core.settings import GenerationRequest
from distilabel_llm.llm.members import _worker
from distilabel_llm.llm.members._child import _CHILD_COMMAND, encode_call
from distilabel_llm.llm.members._protocol import Call
from distilabel_llm.testing import FakeLLM

pytestmark = pytest.mark.timeout(60)


def _fake(task, **kwargs):
    return FakeLLM(task, **kwargs)


class _Unpicklable(Exception):
    def __init__(self, lock: threading.Lock) -> None:
        super().__init__("holds a lock")
        self.lock = lock


def test_generate_returns_a_future_of_rows_in_order(task) -> None:
    with ProcessLLM(task, lambda task: FakeLLM(task, model_name="tiny")) as llm:
        future = llm.generate([{"input": "a"}, {"input": "b"}], num_generations=2)
        assert isinstance(future, Future)
        rows = future.result(timeout=30)
        assert llm.model_name == "tiny"
        assert llm.return_futures is True
        assert llm.task is task
    assert [[output["raw_output"] for output in row] for row in rows] == [
        ["tiny #0: a", "tiny #1: a"],
        ["tiny #0: b", "tiny #1: b"],
    ]
    assert rows[0][0]["prompt_used"] == "sys\na"


def test_pipelined_requests_resolve_to_their_own_results(task) -> None:
    with ProcessLLM(task, _fake) as llm:
        futures = [llm.generate([{"input": str(i)}]) for i in range(500)]
        results = [future.result(timeout=30)[0][0]["raw_output"] for future in futures]
    assert results == [f"fake #0: {i}" for i in range(500)]


def test_rows_missing_inputs_come_back_empty(task) -> None:
    with ProcessLLM(task, _fake) as llm:
        rows = llm.generate([{"input": "a"}, {"other": 1}], num_generations=3).result(timeout=30)
    assert [len(row) for row in rows] == [3, 3]
    assert all(output["raw_output"] is None for output in rows[1])


def test_closure_load_fn_and_env_reach_the_child(task) -> None:
    suffix = "-closure"

    def load(task):
        return FakeLLM(task, model_name=os.environ["DEVICE_UNDER_TEST"] + suffix)

    with ProcessLLM(task, load, env={"DEVICE_UNDER_TEST": 3}) as llm:
        assert llm.model_name == "3-closure"
        assert llm.env == {"DEVICE_UNDER_TEST": "3"}


def test_fork_start_method_works(task) -> None:
    with ProcessLLM(task, _fake, start_method="fork") as llm:
        assert llm.generate([{"input": "x"}]).result(timeout=30)[0][0]["raw_output"] == "fake #0: x"


def test_progress_callback_advances_by_each_request(task) -> None:
    advances = []
    with ProcessLLM(task, _fake) as llm:
        futures = [
            llm.generate(
                [{"input": "a"}] * 3,
                2,
                progress_callback_func=lambda advance: advances.append(advance),
            )
            for _ in range(4)
        ]
        for future in futures:
            future.result(timeout=30)
    assert sum(advances) == 4 * 3 * 2


def test_load_failure_fails_pending_and_later_requests_with_the_child_traceback(task) -> None:
    def load(task):
        raise ValueError("no weights at /models/missing")

    with ProcessLLM(task, load) as llm:
        pending = llm.generate([{"input": "a"}])
        with pytest.raises(ProcessLLMError, match="no weights at /models/missing") as caught:
            pending.result(timeout=30)
        assert "Traceback" in caught.value.child_traceback
        with pytest.raises(ProcessLLMError):
            llm.generate([{"input": "b"}]).result(timeout=30)
        with pytest.raises(ProcessLLMError):
            _ = llm.model_name


def test_load_fn_returning_something_else_is_a_clear_error(task) -> None:
    with (
        ProcessLLM(task, lambda task: "not an llm") as llm,
        pytest.raises(ProcessLLMError, match="must return a distilabel_llm `LLM`"),
    ):
        llm.generate([{"input": "a"}]).result(timeout=30)


def test_a_raising_request_fails_alone_and_the_child_keeps_serving(task) -> None:
    with ProcessLLM(task, lambda task: FakeLLM(task, raise_on="boom")) as llm:
        bad = llm.generate([{"input": "boom"}])
        good = llm.generate([{"input": "fine"}])
        with pytest.raises(RuntimeError, match="told to fail") as caught:
            bad.result(timeout=30)
        assert "Traceback in the child process" in caught.value.__notes__[0]
        assert good.result(timeout=30)[0][0]["raw_output"] == "fake #0: fine"


def test_an_unpicklable_error_arrives_as_process_llm_error(task) -> None:
    class Raising(FakeLLM):
        def _generate(self, inputs, num_generations=1):
            raise _Unpicklable(threading.Lock())

    with ProcessLLM(task, lambda task: Raising(task)) as llm:
        with pytest.raises(ProcessLLMError, match="_Unpicklable: holds a lock"):
            llm.generate([{"input": "a"}]).result(timeout=30)
        assert llm.failure is None


def test_a_child_that_exits_fails_every_in_flight_request(task) -> None:
    with ProcessLLM(task, lambda task: FakeLLM(task, exit_on="die")) as llm:
        futures = [llm.generate([{"input": "die"}]), llm.generate([{"input": "after"}])]
        for future in futures:
            with pytest.raises(ProcessLLMError, match="exit code 3") as caught:
                future.result(timeout=5)
            assert caught.value.exit_code == 3
        with pytest.raises(ProcessLLMError):
            llm.generate([{"input": "later"}]).result(timeout=5)


def test_a_killed_child_fails_in_flight_requests_naming_the_signal(task) -> None:
    with ProcessLLM(task, lambda task: FakeLLM(task, latency=30)) as llm:
        _ = llm.model_name
        future = llm.generate([{"input": "slow"}])
        os.kill(llm.pid, signal.SIGKILL)
        with pytest.raises(ProcessLLMError, match="SIGKILL"):
            future.result(timeout=5)


def test_max_restarts_retries_in_flight_requests_on_a_new_child(task, caplog) -> None:
    with ProcessLLM(task, lambda task: FakeLLM(task, latency=0.5), max_restarts=1) as llm:
        _ = llm.model_name
        first_pid = llm.pid
        future = llm.generate([{"input": "survives"}])
        with caplog.at_level(logging.WARNING, logger="distilabel_llm"):
            os.kill(first_pid, signal.SIGKILL)
            assert future.result(timeout=30)[0][0]["raw_output"] == "fake #0: survives"
        assert llm.pid != first_pid
        assert "restarting it" in caplog.text


def test_request_timeout_fails_the_request_with_timeout_error(task) -> None:
    with (
        ProcessLLM(task, lambda task: FakeLLM(task, latency=0.6), request_timeout=0.1) as llm,
        pytest.raises(TimeoutError, match=r"request_timeout=0\.1"),
    ):
        llm.generate([{"input": "slow"}]).result(timeout=10)


def test_cancelled_request_is_skipped(task) -> None:
    with ProcessLLM(task, lambda task: FakeLLM(task, latency=0.3)) as llm:
        first = llm.generate([{"input": "first"}])
        queued = llm.generate([{"input": "queued"}])
        assert queued.cancel()
        assert first.result(timeout=30)[0][0]["raw_output"] == "fake #0: first"
        assert queued.cancelled()


def test_teardown_lets_in_flight_requests_finish(task) -> None:
    llm = ProcessLLM(task, lambda task: FakeLLM(task, latency=0.2))
    future = llm.generate([{"input": "a"}])
    llm.teardown()
    assert future.result(timeout=1)[0][0]["raw_output"] == "fake #0: a"
    llm.teardown()  # idempotent
    with pytest.raises(RuntimeError, match="torn down"):
        llm.generate([{"input": "b"}])


def test_a_child_killed_while_loading_releases_model_name(task, monkeypatch, tmp_path) -> None:
    from distilabel_llm.llm.members import process

    monkeypatch.setattr(process, "_STOP_SECONDS", 0.5)  # teardown's patience with the child
    gate = tmp_path / "gate"
    os.mkfifo(gate)
    llm = ProcessLLM(task, functools.partial(gated_load, gate=str(gate)))
    with open(gate, "w", encoding="utf-8"):  # opens once the child is loading; held open
        llm.teardown()  # the child is still loading: it is killed after 0.5 s
    with pytest.raises(ProcessLLMError, match="torn down before its model loaded"):
        _ = llm.model_name


def test_bad_arguments_are_reported_clearly(task) -> None:
    with pytest.raises(ValueError, match="start_method"):
        ProcessLLM(task, _fake, start_method="forkserver")
    with pytest.raises(TypeError, match="env"):
        ProcessLLM(task, _fake, env={"A": 1.5})
    with pytest.raises(TypeError, match="callable"):
        ProcessLLM(task, "not a function")
    lock = threading.Lock()
    with pytest.raises(TypeError, match="cloudpickle"):
        ProcessLLM(task, lambda task: lock)
    with ProcessLLM(task, _fake) as llm, pytest.raises(ValueError, match="num_generations"):
        llm.generate([{"input": "a"}], num_generations=0)


def test_parent_memory_stays_flat_over_many_requests(task) -> None:
    def rss_kib() -> int:
        return int(Path("/proc/self/statm").read_text().split()[1]) * resource.getpagesize() // 1024

    with ProcessLLM(task, _fake) as llm:
        for _ in range(2):
            for future in [llm.generate([{"input": "x"}]) for _ in range(10_000)]:
                future.result(timeout=30)
        warm = rss_kib()
        for _ in range(9):
            for future in [llm.generate([{"input": "x"}]) for _ in range(10_000)]:
                future.result(timeout=30)
        assert not llm._pending and not llm._deadlines
    assert rss_kib() - warm < 8 * 1024


def _run_script(tmp_path: Path, source: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(source))
    return subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )


def test_a_script_without_main_guard_and_with_lambdas_works(tmp_path: Path) -> None:
    done = _run_script(
        tmp_path,
        """
        from distilabel_llm import LLM, TextGenerationTask
        from distilabel_llm.llm import ProcessLLM

        class ScriptLLM(LLM):  # defined in __main__, shipped to the child by value
            @property
            def model_name(self):
                return "script-llm"

            def _generate(self, inputs, num_generations=1):
                return [[self._output(p, p.upper()) for _ in range(num_generations)]
                        for p in self._generate_prompts(inputs)]

        llm = ProcessLLM(TextGenerationTask(system_prompt="s"), lambda task: ScriptLLM(task))
        print(llm.generate([{"input": "hello"}]).result()[0][0]["raw_output"])
        llm.teardown()
        """,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "S\nHELLO"


def test_the_child_exits_when_its_parent_is_killed(tmp_path: Path) -> None:
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                """
                import sys, threading
                from distilabel_llm import TextGenerationTask
                from distilabel_llm.llm import ProcessLLM
                from distilabel_llm.testing import FakeLLM
                llm = ProcessLLM(TextGenerationTask(), lambda task: FakeLLM(task, latency=60))
                llm.model_name
                llm.generate([{"input": "busy"}])
                print(llm.pid, flush=True)
                threading.Event().wait()
                """
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        child_pid = int(parent.stdout.readline())
    finally:
        parent.kill()
        parent.wait(10)
        parent.stdout.close()

    def gone() -> bool:
        try:
            stat = Path(f"/proc/{child_pid}/stat").read_text()
        except OSError:
            return True
        return stat.rsplit(")", 1)[1].split()[0] == "Z"

    assert wait_until(gone, 10.0), "the orphaned child kept running"


def test_a_child_whose_parent_is_gone_exits_quietly(task, tmp_path: Path) -> None:
    # The test plays the parent over the real socket, so that it can vanish (close its end, as
    # a killed parent's closes) while the child generates, and the child's results then go
    # nowhere: the child must exit cleanly, with no BrokenPipeError traceback.
    gate = tmp_path / "gate"
    os.mkfifo(gate)
    parent_conn, child_conn = multiprocessing.Pipe()
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD_COMMAND, str(child_conn.fileno())],
        pass_fds=(child_conn.fileno(),),
        stderr=subprocess.PIPE,
        text=True,
    )
    child_conn.close()
    try:
        load = functools.partial(GatedLLM, gate=str(gate))
        payload = cloudpickle.dumps((load, task))
        parent_conn.send_bytes(_worker.dumps((_worker.INIT, list(sys.path), {}, payload)))
        assert pickle.loads(parent_conn.recv_bytes())[0] == _worker.READY
        call = Call(0, GenerationRequest([{"input": "a"}], 1))
        parent_conn.send_bytes(encode_call(call))
        with open(gate, "w", encoding="utf-8"):  # opens once the child waits at the gate
            parent_conn.close()
        _, printed = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    assert (child.returncode, printed) == (0, "")


def test_leaving_a_with_block_by_an_exception_stops_the_child_at_once(task) -> None:
    with (
        pytest.raises(ValueError, match="user code"),
        ProcessLLM(task, lambda task: FakeLLM(task, latency=600)) as llm,
    ):
        future = llm.generate([{"input": "slow"}])
        raise ValueError("user code failed")
    with pytest.raises(ProcessLLMError, match="torn down before this finished"):
        future.result(timeout=5)


def test_a_script_that_ends_with_work_in_flight_exits_at_once(tmp_path: Path) -> None:
    done = _run_script(
        tmp_path,
        """
        from distilabel_llm import TextGenerationTask
        from distilabel_llm.llm import ProcessLLM
        from distilabel_llm.testing import FakeLLM

        llm = ProcessLLM(TextGenerationTask(), lambda task: FakeLLM(task, latency=600))
        llm.generate([{"input": "never awaited"}])
        print("bye")
        """,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "bye"
