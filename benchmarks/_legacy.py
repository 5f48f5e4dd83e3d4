"""Run legacy `distilabel==0.6.0` workloads in that library's own venv, beside our benchmarks.

Legacy distilabel cannot share our venv (it needs `huggingface_hub<0.21`), so each workload
runs `benchmarks/legacy_workloads.py` with the legacy interpreter and reads back its JSON.
Every public function returns None, after printing one line saying why, when legacy is
unavailable, so a benchmark simply leaves the legacy column empty.

Typical use:
    result = run_legacy("process_sequential", requests=3000, repeats=3)
    if result is not None:
        legacy_rate = result["median"]["rate_per_s"]
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any, Dict, List, Optional

__all__ = [
    "LEGACY_PINS",
    "LEGACY_PYTHON_ENV_VAR",
    "ensure_legacy_venv",
    "legacy_python",
    "legacy_versions",
    "run_legacy",
]

REPO_ROOT = Path(__file__).resolve().parent.parent
WORKLOADS_SCRIPT = Path(__file__).resolve().with_name("legacy_workloads.py")
LEGACY_PYTHON_ENV_VAR = "DISTILABEL_LEGACY_PYTHON"
DEFAULT_LEGACY_VENVS = (REPO_ROOT / ".venv-legacy",)
# `huggingface_hub` 0.20.3 is the last release with `huggingface_hub.inference._text_generation`,
# which distilabel 0.6.0 imports; `datasets` 2.17.1 (distilabel 0.6.0's era) accepts that hub.
LEGACY_PINS = ("distilabel==0.6.0", "huggingface_hub==0.20.3", "datasets==2.17.1")

_CHECK_TIMEOUT_S = 60.0
_INSTALL_TIMEOUT_S = 900.0
_reported: set = set()


def _report(reason: str) -> None:
    """Print why legacy figures are missing, once per distinct reason."""
    if reason not in _reported:
        _reported.add(reason)
        print(f"legacy distilabel 0.6.0 unavailable: {reason}", file=sys.stderr, flush=True)


def _kill_group(process: subprocess.Popen) -> None:
    """Kill the session we started (the script and any legacy children it forked)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


def _last_line(text: str, prefix: str) -> str:
    """The last non-blank line of `text` after `prefix`, or "" when there is none."""
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return f"{prefix}{lines[-1]}" if lines else ""


def _run_script(
    python: str, args: List[str], timeout_s: float
) -> tuple[Optional[Dict[str, Any]], str]:
    """Run the workloads script; return (parsed JSON, "") or (None, one-line reason).

    The script runs in its own session so that on timeout, error or interrupt the whole
    group (legacy `ProcessLLM` children included) is killed and nothing is left behind.
    `-I` keeps our repo, PYTHONPATH and user site out of the legacy interpreter's path.
    """
    process = subprocess.Popen(
        [python, "-I", str(WORKLOADS_SCRIPT), *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        _kill_group(process)
        _, stderr = process.communicate()
        return None, f"`{' '.join(args)}` timed out after {timeout_s:g} s{_last_line(stderr, ': ')}"
    finally:
        # Also reaps forked children that outlived the script, and runs on KeyboardInterrupt.
        _kill_group(process)
        if process.poll() is None:
            process.wait()
    if process.returncode != 0:
        last = _last_line(stderr, ": ") or ": no error output"
        return None, f"`{' '.join(args)}` exited with {process.returncode}{last}"
    try:
        return json.loads(stdout.strip().splitlines()[-1]), ""
    except (ValueError, IndexError):
        return None, f"`{' '.join(args)}` printed no JSON result: {stdout[-200:]!r}"


def _candidate_pythons() -> List[Path]:
    explicit = os.environ.get(LEGACY_PYTHON_ENV_VAR)
    if explicit:
        return [Path(explicit)]
    return [venv / "bin" / "python" for venv in DEFAULT_LEGACY_VENVS]


@cache
def _probe(python: str) -> tuple[Optional[Dict[str, Any]], str]:
    """Import legacy distilabel's LLM layer with `python`; return its versions or a reason."""
    result, reason = _run_script(python, ["check"], _CHECK_TIMEOUT_S)
    if result is None:
        return None, f"{python}: {reason}"
    return result["versions"], ""


def legacy_python() -> Optional[str]:
    """Find an interpreter where legacy `distilabel.llm` imports.

    Looks at `$DISTILABEL_LEGACY_PYTHON` when set (and only there), else at
    `<repo>/.venv-legacy/bin/python` (made by `python -m benchmarks --legacy-setup`).

    Returns:
        The interpreter's path, or None (with one line printed) when none works.
    """
    candidates = _candidate_pythons()
    present = [python for python in candidates if python.exists()]
    if not present:
        names = ", ".join(str(python) for python in candidates)
        _report(f"no interpreter at {names}; run `python -m benchmarks --legacy-setup`")
        return None
    reasons = []
    for python in present:
        versions, reason = _probe(str(python))
        if versions is not None:
            return str(python)
        reasons.append(reason)
    _report("; ".join(reasons))
    return None


def legacy_versions() -> Optional[Dict[str, Any]]:
    """Versions the legacy interpreter reports (distilabel, huggingface_hub, start method)."""
    python = legacy_python()
    return None if python is None else _probe(python)[0]


def run_legacy(workload: str, *, timeout_s: float = 120.0, **params: Any) -> Optional[Dict]:
    """Run one legacy workload and return its JSON result.

    Args:
        workload: one of `threads`, `process_sequential`, `process_pipelined`,
            `pool_replicas`, `pool_mixed` (see `benchmarks/legacy_workloads.py`).
        timeout_s: seconds before the run and all its processes are killed.
        **params: the workload's parameters, plus `repeats` (runs in one interpreter) and,
            for process workloads, `start_method`.

    Returns:
        `{"workload", "params", "versions", "runs", "median", "min", "max"}`, or None (with
        one line printed) when legacy is unavailable or the run failed.
    """
    python = legacy_python()
    if python is None:
        return None
    result, reason = _run_script(python, [workload, "--params", json.dumps(params)], timeout_s)
    if result is None:
        _report(reason)
    return result


def ensure_legacy_venv(path: Optional[str] = None) -> Optional[str]:
    """Create a venv with legacy distilabel and its pins, unless one already works there.

    Args:
        path: the venv folder; defaults to `<repo>/.venv-legacy`.

    Returns:
        The venv's interpreter, or None (with one line printed) if it could not be set up.
    """
    venv = Path(path) if path is not None else REPO_ROOT / ".venv-legacy"
    python = venv / "bin" / "python"
    if python.exists() and _probe(str(python))[0] is not None:
        return str(python)
    steps = [
        [sys.executable, "-m", "venv", str(venv)],
        [str(python), "-m", "pip", "install", "--disable-pip-version-check", *LEGACY_PINS],
    ]
    for step in steps:
        print(f"$ {' '.join(step)}", file=sys.stderr, flush=True)
        try:
            completed = subprocess.run(
                step, capture_output=True, text=True, timeout=_INSTALL_TIMEOUT_S
            )
        except subprocess.TimeoutExpired:
            _report(f"`{' '.join(step[:3])}` timed out after {_INSTALL_TIMEOUT_S:g} s")
            return None
        if completed.returncode != 0:
            tail = (completed.stderr or completed.stdout).strip().splitlines()[-1:]
            _report(f"`{' '.join(step[:3])}` failed: {' '.join(tail)}")
            return None
    _probe.cache_clear()
    versions, reason = _probe(str(python))
    if versions is None:
        _report(reason)
        return None
    return str(python)
