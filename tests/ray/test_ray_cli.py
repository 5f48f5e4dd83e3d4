"""`distilabel-llm generate --ray-replicas`: a batch job whose model runs in Ray actors, started
as a real process that joins the tests' Ray instance."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.ray, pytest.mark.timeout(120)]

CLI = [sys.executable, "-m", "distilabel_llm", "generate"]


def _generate(
    ray_cluster: Any, prompts: Path, output: Path, model: Path, *options: str
) -> subprocess.CompletedProcess:
    """Runs `generate` with the llama.cpp tiny model, joined to the tests' Ray instance."""
    args = ["--input", str(prompts), "--output", str(output), "--backend", "llama-cpp"]
    args += ["--model", str(model), *options]
    env = {**os.environ, "RAY_ADDRESS": ray_cluster.get_runtime_context().gcs_address}
    return subprocess.run(
        [*CLI, *args], env=env, capture_output=True, text=True, timeout=100, check=False
    )


def test_generate_on_ray_replicas(tmp_path: Path, tiny_models: Any, ray_cluster: Any) -> None:
    pytest.importorskip("llama_cpp")
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"input": f"Question {i}?"}) + "\n" for i in range(12)))
    output = tmp_path / "out.jsonl"
    done = _generate(
        ray_cluster, prompts, output, tiny_models.gguf_path,
        "--ray-replicas", "2", "--max-new-tokens", "4", "--no-progress",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    assert [row["input"] for row in rows] == [f"Question {i}?" for i in range(12)]
    assert all(len(row["generations"]) == 1 and row["error"] is None for row in rows)


def test_a_cluster_too_small_is_a_clear_error(
    tmp_path: Path, tiny_models: Any, ray_cluster: Any
) -> None:
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(json.dumps({"input": "Hi"}) + "\n")
    output, model = tmp_path / "out.jsonl", tiny_models.gguf_path
    done = _generate(ray_cluster, prompts, output, model, "--ray-replicas", "2", "--ray-gpus", "1")
    assert done.returncode == 1
    assert "error: The Ray cluster cannot hold 2 actor(s)" in done.stderr
    assert "Traceback" not in done.stderr
