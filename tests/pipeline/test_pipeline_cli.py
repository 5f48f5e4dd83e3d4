"""The `distilabel-llm` command: demo and generate as real processes on the tiny models."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, List

import pytest
from pipeline_helpers import fault_server_module, read_rows, wait_for_rows

from distilabel_llm import TextGenerationTask
from distilabel_llm.cli import main
from distilabel_llm.errors import MissingExtraError
from distilabel_llm.pipeline import backends

pytestmark = pytest.mark.timeout(60)

_MISSING = [
    name
    for name in ("llama_cpp", "transformers", "torch", "tokenizers", "gguf")
    if importlib.util.find_spec(name) is None
]
needs_models = pytest.mark.skipif(
    bool(_MISSING),
    reason=f"needs the 'all' extra to build and run the tiny models; missing {_MISSING}: "
    "pip install 'distilabel_llm[all]'",
)
CLI = [sys.executable, "-m", "distilabel_llm"]
Spawn = Callable[..., subprocess.Popen]


@pytest.fixture(scope="module")
def cached_tiny_models():
    """The tiny models, built once into the shared cache (seconds on the first run): where the
    `demo` and `build-tiny-models` commands find them, unlike the session's `tiny_models` (a
    temp dir)."""
    if _MISSING:
        pytest.skip(f"tiny models need {_MISSING}")
    from distilabel_llm.testing.tiny_models import ensure_tiny_models

    return ensure_tiny_models()


def _prompts(path: Path, count: int) -> Path:
    lines = [json.dumps({"input": f"Question number {i}?"}) for i in range(count)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _group_gone(pgid: int, timeout: float) -> bool:
    """Whether every process of group `pgid` has exited within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


@needs_models
@pytest.mark.slow
@pytest.mark.timeout(90)
def test_demo(tmp_path: Path, cached_tiny_models, spawn: Spawn) -> None:
    demo = spawn([*CLI, "demo", "--output-dir", str(tmp_path), "--rows", "12"])
    output, _ = demo.communicate(timeout=80)
    assert demo.returncode == 0, output
    result = tmp_path / "generations.jsonl"
    assert f"Wrote 12 rows to {result}" in output.replace("\n", "")
    assert "12 rows generated" in output and "Tokens/s" in output
    assert "#0 tiny-llama.gguf" in output and "/hf" in output  # one line per pool member
    assert "Generating: 12/12 rows (100%)" in output  # plain progress lines: stdout is a pipe
    rows = read_rows(result)
    assert len(rows) == 12 and all(row["error"] is None for row in rows)
    assert {row["generation_model"][0].rsplit("/", 1)[-1] for row in rows} <= {
        "tiny-llama.gguf",
        "hf",
    }


@needs_models
@pytest.mark.slow
@pytest.mark.timeout(90)
def test_generate_killed_then_resumed(tmp_path: Path, cached_tiny_models, spawn: Spawn) -> None:
    prompts = _prompts(tmp_path / "in.jsonl", 40)
    out = tmp_path / "out.jsonl"
    args = [
        *CLI, "generate", "--input", str(prompts), "--output", str(out),
        "--backend", "llama-cpp", "--model", str(cached_tiny_models.gguf_path),
        "--batch-size", "2", "--max-new-tokens", "16", "--threads", "1",
    ]  # fmt: skip
    job = spawn(args)
    wait_for_rows(out, 4, job, timeout=60)
    os.kill(job.pid, signal.SIGKILL)  # the job only: its model process must notice alone
    assert job.wait(timeout=10) == -signal.SIGKILL
    assert _group_gone(job.pid, timeout=10), "the model process outlived its killed job"
    killed_at = len(read_rows(out))
    assert killed_at < 40, "the job finished before it was killed"

    resumed = spawn(args)
    output, _ = resumed.communicate(timeout=60)
    assert resumed.returncode == 0, output
    assert f"Resuming: {killed_at} of 40 rows" in output
    rows = read_rows(out)
    assert [row["input"] for row in rows] == [f"Question number {i}?" for i in range(40)]
    assert all(row["error"] is None and row["raw_generation_responses"][0] for row in rows)


@needs_models
@pytest.mark.slow
@pytest.mark.timeout(90)
def test_generate_terminated_says_what_was_saved(
    tmp_path: Path, cached_tiny_models, spawn: Spawn
) -> None:
    """SIGTERM (a `kill`, a scheduler's stop) stops a job as Ctrl-C does: the rows done are
    saved, the command says so and how to resume (as the SIGKILL test above resumes), and
    exits 143."""
    prompts = _prompts(tmp_path / "in.jsonl", 400)
    out = tmp_path / "out.jsonl"
    args = [
        *CLI, "generate", "--input", str(prompts), "--output", str(out),
        "--backend", "llama-cpp", "--model", str(cached_tiny_models.gguf_path),
        "--batch-size", "2", "--max-new-tokens", "16", "--threads", "1", "--no-progress",
    ]  # fmt: skip
    job = spawn(args)
    wait_for_rows(out, 4, job, timeout=60)
    job.send_signal(signal.SIGTERM)
    output, _ = job.communicate(timeout=30)
    assert job.returncode == 143, output
    saved = len(read_rows(out))
    assert saved < 400, "the job finished before it was stopped"
    assert f"Stopped with {saved} of 400 rows done, saved in {out}" in output, output
    assert "run the job again to resume" in output


def test_version(capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == "distilabel-llm 0.1.0"


@needs_models
@pytest.mark.slow
@pytest.mark.timeout(60)
def test_generate_with_labeller_in_process(tmp_path: Path, cached_tiny_models, capsys) -> None:
    prompts = _prompts(tmp_path / "in.jsonl", 3)
    out = tmp_path / "out.jsonl"
    code = main(
        [
            "generate", "--input", str(prompts), "--output", str(out),
            "--backend", "llama-cpp", "--model", str(cached_tiny_models.gguf_path),
            "--processes", "0", "--num-generations", "2", "--max-new-tokens", "8",
            "--labeller", "judgelm", "--no-progress",
        ]
    )  # fmt: skip
    assert code == 0, capsys.readouterr()
    rows = read_rows(out)
    assert len(rows) == 3
    assert all(len(row["generations"]) == 2 for row in rows)
    assert all(row["labelling_model"] and row["raw_labelling_response"] for row in rows)
    assert f"Wrote 3 rows to {out}" in capsys.readouterr().out.replace("\n", "")


@needs_models
def test_greedy_duplicates_and_rows_without_input_are_warned_about(
    tmp_path: Path, cached_tiny_models, capsys, caplog
) -> None:
    prompts = tmp_path / "in.jsonl"
    prompts.write_text('{"input": "a question"}\n{"prompt": "no input here"}\n', encoding="utf-8")
    out = tmp_path / "out.jsonl"
    code = main(
        [
            "generate", "--input", str(prompts), "--output", str(out),
            "--backend", "transformers", "--model", str(cached_tiny_models.hf_path),
            "--processes", "0", "--num-generations", "2", "--max-new-tokens", "4",
            "--no-progress",
        ]
    )  # fmt: skip
    assert code == 3  # the row without input failed
    assert "gives 2 identical generations per row; pass --temperature" in caplog.text
    assert "A row has no value for ['input']" in caplog.text
    assert "Loading weights" not in capsys.readouterr().err
    assert read_rows(out)[1]["error"].startswith("row has no value for ['input']")


@needs_models
@pytest.mark.slow
def test_a_demo_with_nothing_to_compile(tmp_path: Path, cached_tiny_models, capsys) -> None:
    code = main(
        ["demo", "--output-dir", str(tmp_path), "--rows", "4", "--backends", "transformers"]
    )
    printed = " ".join(capsys.readouterr().out.split())
    assert code == 0, printed
    assert "#0 " in printed and "#1 " in printed and "gguf" not in printed
    assert len(read_rows(tmp_path / "generations.jsonl")) == 4


def test_demo_and_build_tiny_models_describe_themselves(capsys) -> None:
    for command in ("demo", "build-tiny-models"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "tiny llama with random weights" in text and "needs no compiler" in text


def _run(argv: List[str], capsys) -> str:
    assert main(argv) == 1
    return " ".join(capsys.readouterr().err.split())


def test_missing_model_path(tmp_path: Path, capsys) -> None:
    prompts = _prompts(tmp_path / "in.jsonl", 1)
    base = ["generate", "--input", str(prompts), "--output", str(tmp_path / "o.jsonl")]
    if importlib.util.find_spec("llama_cpp") is not None:
        error = _run([*base, "--backend", "llama-cpp", "--model", "nope.gguf"], capsys)
        assert "No GGUF model file at 'nope.gguf'" in error
    if importlib.util.find_spec("transformers") is not None:
        error = _run([*base, "--backend", "transformers", "--model", "./nope"], capsys)
        assert "No model directory at './nope'" in error


def test_unreadable_input_and_bad_json_line(tmp_path: Path, capsys) -> None:
    base = ["--output", str(tmp_path / "o.jsonl"), "--backend", "openai", "--model", "m"]
    error = _run(["generate", "--input", str(tmp_path / "missing.jsonl"), *base], capsys)
    assert "missing.jsonl' does not exist" in error
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"input": "a"}\n{"input": "b",}\n', encoding="utf-8")
    error = _run(["generate", "--input", str(bad), *base], capsys)
    assert "line 2 is not valid JSON" in error


def test_missing_extra_names_the_install_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    # The extras are installed here, so hide one the way a clean install would lack it.
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        backends.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "llama_cpp" else real_find_spec(name, *a),
    )
    with pytest.raises(MissingExtraError, match=r"pip install 'distilabel_llm\[llama-cpp\]'"):
        backends.check_backend("llama-cpp", "model.gguf")
    prompts = _prompts(tmp_path / "in.jsonl", 1)
    args = ["--output", str(tmp_path / "o.jsonl"), "--backend", "llama-cpp", "--model", "m.gguf"]
    assert main(["generate", "--input", str(prompts), *args]) == 1
    error = capsys.readouterr().err
    assert "`llama-cpp-python` is not installed" in error
    assert "Run: pip install 'distilabel_llm[llama-cpp]'" in error  # never wrapped mid-command


@needs_models
def test_build_tiny_models_prints_their_paths(cached_tiny_models, capsys) -> None:
    assert main(["build-tiny-models"]) == 0
    out = capsys.readouterr().out
    assert f"GGUF model:         {cached_tiny_models.gguf_path}" in out
    assert f"Hugging Face model: {cached_tiny_models.hf_path}" in out


def test_bad_arguments_exit_with_usage(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["generate", "--input", "x", "--output", "y", "--backend", "vllm", "--model", "m"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'vllm'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(
            [
                "generate", "--input", "x", "--output", "y", "--backend", "llama-cpp",
                "--model", "m.gguf", "--continuous-batching",
            ]
        )  # fmt: skip
    assert exit_info.value.code == 2
    assert "--continuous-batching needs --backend transformers" in capsys.readouterr().err


@needs_models
def test_continuous_batching_flag_reaches_transformers(
    tmp_path: Path, cached_tiny_models, capsys, monkeypatch
) -> None:
    from distilabel_llm.llm.backends import _continuous_batching

    # Prompts of different lengths: static batches pad the shorter ones, continuous ones do not.
    lines = [json.dumps({"input": f"Question {'very ' * 7 * i}long {i}?"}) for i in range(3)]
    prompts = tmp_path / "in.jsonl"
    prompts.write_text("\n".join(lines) + "\n", encoding="utf-8")
    decoded_continuously: List[int] = []
    real = _continuous_batching.generate_continuously

    def spy(model, encoded, *args, **kwargs):
        decoded_continuously.append(len(encoded))
        return real(model, encoded, *args, **kwargs)

    monkeypatch.setattr(_continuous_batching, "generate_continuously", spy)
    printed = {}
    for flags in ([], ["--continuous-batching"]):
        out = tmp_path / f"out{len(flags)}.jsonl"
        code = main(
            [
                "generate", "--input", str(prompts), "--output", str(out),
                "--backend", "transformers", "--model", str(cached_tiny_models.hf_path),
                "--processes", "0", "--max-new-tokens", "6", "--no-progress", *flags,
            ]
        )  # fmt: skip
        captured = capsys.readouterr()
        assert code == 0, captured
        printed[bool(flags)] = " ".join(captured.out.split())
        # What the flag changes: the decoding path, and so the padding the job reports.
        assert decoded_continuously == ([3] if flags else []), flags
    assert "padding: 0% of the positions computed" in printed[True]
    assert "padding: 0% of" not in printed[False] and "padding: " in printed[False]


@pytest.mark.skipif(
    importlib.util.find_spec("openai") is None,
    reason="needs the 'openai' extra: pip install 'distilabel_llm[openai]'",
)
def test_generate_with_openai_server_keeps_failed_rows(tmp_path: Path, capsys) -> None:
    fault_server = fault_server_module()
    prompts = _prompts(tmp_path / "in.jsonl", 5)
    out = tmp_path / "out.jsonl"
    with fault_server.FaultServer(api_key="secret") as server:
        server.rule("Question number 2?", fault_server.Fault(status=400))
        code = main(
            [
                "generate", "--input", str(prompts), "--output", str(out),
                "--backend", "openai", "--model", "fault-model", "--base-url", server.url,
                "--api-key", "secret", "--num-generations", "2", "--labeller", "judgelm",
                "--no-progress",
            ]
        )  # fmt: skip
    captured = capsys.readouterr()
    printed = " ".join(captured.out.split())
    assert code == 3, printed  # the job ran to its end, with a failed row
    assert "1 of 5 rows failed" in " ".join(captured.err.split())
    rows = read_rows(out)
    assert [row["input"] for row in rows] == [f"Question number {i}?" for i in range(5)]
    assert rows[2]["generations"] == [None, None]
    assert rows[2]["error"].startswith("generation failed: fault-model returned no text")
    assert rows[2]["raw_labelling_response"] is None  # a failed row is not sent to the labeller
    assert rows[0]["generations"] == ["echo 0: Question number 0?", "echo 1: Question number 0?"]
    assert rows[0]["labelling_model"] == "fault-model" and rows[0]["error"] is None


def _usage_error(argv: List[str], capsys) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    return " ".join(capsys.readouterr().err.split())


def test_an_output_that_is_the_input_is_refused(tmp_path: Path, capsys) -> None:
    prompts = _prompts(tmp_path / "in.jsonl", 2)
    before = prompts.read_bytes()
    (tmp_path / "link.jsonl").symlink_to(prompts)
    os.link(prompts, tmp_path / "hard.jsonl")
    for output in (prompts, tmp_path / "link.jsonl", tmp_path / "hard.jsonl"):
        error = _usage_error(
            ["generate", "--input", str(prompts), "--output", str(output),
             "--backend", "openai", "--model", "m"],
            capsys,
        )  # fmt: skip
        assert f"--output '{output}' is the --input file" in error
        assert "give --output another path" in error
    assert prompts.read_bytes() == before
    assert not (tmp_path / "in.jsonl.job.json").exists()


def test_flags_the_backend_would_ignore_are_refused(tmp_path: Path, capsys) -> None:
    prompts = _prompts(tmp_path / "in.jsonl", 1)
    base = ["generate", "--input", str(prompts), "--output", str(tmp_path / "o.jsonl")]
    openai_job = [*base, "--backend", "openai", "--model", "m"]
    for flags in (["--processes", "2"], ["--devices", "0"], ["--ray-replicas", "2"]):
        error = _usage_error([*openai_job, *flags], capsys)
        assert f"{flags[0]} says where local models run, but the openai backend runs no" in error
        assert "use --max-concurrency N" in error
    error = _usage_error([*openai_job, "--threads", "2"], capsys)
    assert "--threads sets a local model's CPU threads" in error
    local_job = [*base, "--backend", "llama-cpp", "--model", "m.gguf"]
    for flag in ("--max-concurrency", "--max-requests-per-minute", "--max-tokens-per-minute"):
        error = _usage_error([*local_job, flag, "4"], capsys)
        assert f"{flag} applies to the openai backend" in error
    assert not (tmp_path / "o.jsonl").exists()


def test_rate_limit_flags_reach_the_openai_llm() -> None:
    fault_server = fault_server_module()
    with fault_server.FaultServer() as server:
        llm = backends.build_llm(
            TextGenerationTask(),
            backend="openai",
            model="fault-model",
            base_url=server.url,
            api_key="none",
            max_requests_per_minute=600,
            max_tokens_per_minute=90_000,
        )
        try:
            assert llm.max_requests_per_minute == 600
            assert llm.max_tokens_per_minute == 90_000
        finally:
            llm.close()


def test_max_concurrency_keeps_that_many_requests_in_flight(tmp_path: Path, capsys) -> None:
    fault_server = fault_server_module()
    prompts = _prompts(tmp_path / "in.jsonl", 8)
    with fault_server.FaultServer() as server:
        server.hold_until_concurrent(4)  # a request waits until 4 are in flight (else: 500)
        code = main(
            [
                "generate", "--input", str(prompts), "--output", str(tmp_path / "out.jsonl"),
                "--backend", "openai", "--model", "fault-model", "--base-url", server.url,
                "--api-key", "k", "--no-progress", "--max-concurrency", "4",
            ]
        )  # fmt: skip
    assert code == 0, capsys.readouterr()
    assert server.max_in_flight == 4
    assert [row["generations"] for row in read_rows(tmp_path / "out.jsonl")] == [
        [f"echo 0: Question number {i}?"] for i in range(8)
    ]


def test_generation_flags_reach_the_server(tmp_path: Path, capsys) -> None:
    fault_server = fault_server_module()
    prompts = _prompts(tmp_path / "in.jsonl", 2)
    with fault_server.FaultServer() as server:
        code = main(
            [
                "generate", "--input", str(prompts), "--output", str(tmp_path / "out.jsonl"),
                "--backend", "openai", "--model", "fault-model", "--base-url", server.url,
                "--api-key", "k", "--no-progress", "--temperature", "0.4", "--top-p", "0.9",
                "--seed", "5", "--stop", "END", "--stop", "STOP", "--max-new-tokens", "9",
                "--generation-kwargs", '{"presence_penalty": 0.5, "temperature": 2.0}',
            ]
        )  # fmt: skip
        bodies = [request.body for request in server.requests()]
    assert code == 0, capsys.readouterr()
    for body in bodies:
        assert body["temperature"] == 0.4  # the flag wins over --generation-kwargs
        assert body["top_p"] == 0.9 and body["seed"] == 5 and body["max_tokens"] == 9
        assert body["stop"] == ["END", "STOP"] and body["presence_penalty"] == 0.5


def test_structured_output_flags(tmp_path: Path, capsys) -> None:
    fault_server = fault_server_module()
    prompts = _prompts(tmp_path / "in.jsonl", 1)
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps({"type": "object", "properties": {"a": {"type": "integer"}}}))
    base = ["generate", "--input", str(prompts), "--backend", "openai", "--model", "fault-model",
            "--api-key", "k", "--no-progress"]  # fmt: skip
    with fault_server.FaultServer() as server:
        out = str(tmp_path / "out.jsonl")
        code = main(
            [*base, "--output", out, "--base-url", server.url, "--json-schema", str(schema)]
        )
        body = server.requests()[0].body
        assert code == 3  # the fault server echoes: no JSON, so the row fails, saying why
        assert body["response_format"]["json_schema"]["schema"]["properties"] == {
            "a": {"type": "integer"}
        }
        regex_out = str(tmp_path / "regex.jsonl")
        code = main([*base, "--output", regex_out, "--base-url", server.url, "--regex", "[a-z]+"])
    assert code == 1 and "structured_output_mode='extra_body'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*base, "--output", out, "--json-schema", str(tmp_path / "missing.json")])
    assert "cannot read a JSON schema" in capsys.readouterr().err


def test_unknown_generation_settings_fail_before_any_model_starts(tmp_path: Path, capsys) -> None:
    prompts = _prompts(tmp_path / "in.jsonl", 2)
    code = main(
        [
            "generate", "--input", str(prompts), "--output", str(tmp_path / "out.jsonl"),
            "--backend", "transformers", "--model", str(tmp_path / "missing"),
            "--generation-kwargs", '{"temprature": 0.5}',
        ]
    )  # fmt: skip
    assert code == 1
    assert "`temprature` is not a generation setting" in " ".join(capsys.readouterr().err.split())
    with pytest.raises(SystemExit):
        main(["generate", "--input", "x", "--output", "y", "--backend", "openai",
              "--model", "m", "--generation-kwargs", "[1]"])  # fmt: skip
    assert "must be a JSON object" in capsys.readouterr().err


def test_nan_and_infinities_fail_before_any_model_starts(tmp_path: Path, capsys) -> None:
    prompts = _prompts(tmp_path / "in.jsonl", 1)
    base = ["generate", "--input", str(prompts), "--output", str(tmp_path / "out.jsonl"),
            "--backend", "transformers", "--model", str(tmp_path / "missing")]  # fmt: skip
    for flag, value in (("--temperature", "inf"), ("--top-p", "nan")):
        with pytest.raises(SystemExit) as exit_info:
            main([*base, flag, value])
        assert exit_info.value.code == 2
        assert f"must be a finite number, 0 or more, not '{value}'" in capsys.readouterr().err
    code = main([*base, "--generation-kwargs", '{"temperature": Infinity}'])  # JSON's extension
    assert code == 1
    assert "`temperature` cannot be inf" in " ".join(capsys.readouterr().err.split())


def test_cli_and_pipeline_import_no_backend() -> None:
    code = (
        "import sys, distilabel_llm.cli, distilabel_llm.pipeline, distilabel_llm.pipeline.demo;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('torch', 'transformers', 'llama_cpp', 'openai', 'datasets')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True
    )
    assert result.stdout.strip() == "[]"
