"""Whole pool lifecycles, timed and weighed, shared by the start-up and memory benchmarks.

One lifecycle starts a 2-replica `LLMPool` with `from_replicas`, waits for its first result
(the start-up time), runs a batch, then reads the peak resident memory of the parent and of
each child from `/proc` before tearing the pool down. The reference is as many plain Python
processes, launched side by side, doing the same with the raw library (or nothing at all, for
the no-op model): the time from their launch to the first result, and their peak memory.

Results are cached per (model, runs), so `benchmarks.startup` and `benchmarks.memory` read the
same runs when the runner calls both: one set of runs gives both figures.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional, Tuple

from benchmarks._tiny import ONE_THREAD_ENV, load_fake, rows, tiny_loader, tiny_model_path
from distilabel_llm.llm import LLMPool
from distilabel_llm.tasks import TextGenerationTask

__all__ = ["BATCH_ROWS", "MAX_NEW_TOKENS", "MODELS", "lifecycles", "status_mb"]

MODELS = ("fake", "tiny")
REPLICAS = 2
BATCH_ROWS = 16
MAX_NEW_TOKENS = 32
_TIMEOUT_S = 300

# The reference: a fresh interpreter that loads the model with the raw library, generates one
# row, then the batch, and prints when its first result came and its peak memory.
_PLAIN_SCRIPT = r"""
import json, sys, time
model, path, batch, max_new_tokens = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
first = None
if model == "tiny":
    import torch, transformers
    torch.set_num_threads(1)
    tokenizer = transformers.AutoTokenizer.from_pretrained(path)
    tokenizer.padding_side = "left"
    lm = transformers.AutoModelForCausalLM.from_pretrained(path).eval()
    prompts = json.loads(sys.argv[5])
    def generate(texts):
        chats = [tokenizer.apply_chat_template([{"role": "user", "content": t}], tokenize=False,
                 add_generation_prompt=True) for t in texts]
        enc = tokenizer(chats, add_special_tokens=False, padding=True, return_tensors="pt")
        with torch.inference_mode():
            out = lm.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                              pad_token_id=tokenizer.pad_token_id)
        return tokenizer.batch_decode(out[:, enc.input_ids.shape[1]:], skip_special_tokens=True)
    generate(prompts[:1])
    first = time.time()
    generate(prompts)
else:
    first = time.time()
hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))
print(json.dumps({"first_result_at": first, "peak_kb": hwm}))
"""


def status_mb(field: str, pid: Optional[int] = None) -> Optional[float]:
    """A memory field of `/proc/<pid>/status` (`VmRSS`, `VmHWM`) in MB, or None if unreadable."""
    path = f"/proc/{pid if pid is not None else 'self'}/status"
    try:
        with open(path) as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _reset_peak() -> bool:
    """Resets this process's peak RSS (VmHWM) to its current RSS; False where Linux refuses."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
        return True
    except OSError:
        return False


def _loader(model: str) -> Any:
    return load_fake if model == "fake" else tiny_loader(MAX_NEW_TOKENS)


def _pool_once(model: str) -> Dict[str, Any]:
    task = TextGenerationTask()
    loader = _loader(model)  # builds the tiny model first if needed: not part of start-up
    reset = _reset_peak()
    rss_before = status_mb("VmRSS")
    start = time.perf_counter()
    pool = LLMPool.from_replicas(task, loader, replicas=REPLICAS, env=ONE_THREAD_ENV)
    try:
        pool.generate(rows(1))
        startup_s = time.perf_counter() - start
        pool.generate(rows(BATCH_ROWS))
        children = [status_mb("VmHWM", llm.pid) for llm in pool.llms]
        # Without a reset, VmHWM holds the peak of whatever ran before in this process (other
        # benchmarks): no figure rather than a wrong one.
        parent_peak = status_mb("VmHWM") if reset else None
    finally:
        pool.teardown()
    return {
        "startup_s": startup_s,
        "parent_rss_before_mb": rss_before,
        "parent_peak_mb": parent_peak,
        "parent_growth_mb": None
        if parent_peak is None or rss_before is None
        else parent_peak - rss_before,
        "children_peak_mb": children,
    }


def _plain_once(model: str) -> Dict[str, Any]:
    """`REPLICAS` plain processes launched side by side, as the pool launches its children."""
    path = tiny_model_path() if model == "tiny" else ""
    prompts = json.dumps([row["input"] for row in rows(BATCH_ROWS)])
    args = [model, path, str(BATCH_ROWS), str(MAX_NEW_TOKENS), prompts]
    launched = time.time()
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", _PLAIN_SCRIPT, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **ONE_THREAD_ENV},
        )
        for _ in range(REPLICAS)
    ]
    reports = []
    try:
        for process in processes:
            stdout, stderr = process.communicate(timeout=_TIMEOUT_S)
            if process.returncode != 0:
                tail = stderr.strip().splitlines()[-1:] or ["no error output"]
                raise RuntimeError(f"a plain {model} process failed: {tail[0]}")
            reports.append(json.loads(stdout.strip().splitlines()[-1]))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    return {
        "first_result_s": min(report["first_result_at"] for report in reports) - launched,
        "peak_mb": [report["peak_kb"] / 1024 for report in reports],
    }


@functools.cache
def lifecycles(model: str, runs: int) -> Tuple[List[Dict[str, Any]], List[Dict[str, Any]]]:
    """`runs` pool lifecycles of `model` ("fake" or "tiny") and as many plain processes.

    They alternate, so that each pair sees the same machine load and ratios can be taken run
    by run.
    """
    pools: List[Dict[str, Any]] = []
    plains: List[Dict[str, Any]] = []
    for _ in range(runs):
        pools.append(_pool_once(model))
        plains.append(_plain_once(model))
    return pools, plains
