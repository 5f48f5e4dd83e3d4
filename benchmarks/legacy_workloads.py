"""Benchmark workloads run with legacy `distilabel==0.6.0`, in that library's own venv.

This script is executed by the legacy venv's interpreter (see `benchmarks/_legacy.py`), never
imported by `distilabel_llm` code: it imports only the standard library and legacy `distilabel`.

Usage:
    <legacy-python> -I benchmarks/legacy_workloads.py check
    <legacy-python> -I benchmarks/legacy_workloads.py WORKLOAD [--params JSON | --params -]

`--params -` reads the JSON object from stdin. The special parameter `repeats` (default 1) runs
the workload that many times in this one interpreter. One JSON object is printed to stdout:
`{"workload", "params", "versions", "runs": [...], "median": {...}, "min": {...}, "max": {...}}`,
each run being a flat dict of figures (seconds, rates, ratios to the ideal).

Workloads (parameters and defaults):
    threads             threads=32, requests=256, latency=0.05
    process_sequential  requests=3000
    process_pipelined   requests=3000
    pool_replicas       members=4, inputs=64, latency_per_generation=0.02, num_generations=1
    pool_mixed          latencies=[0.01, 0.1], inputs=16, num_generations=4
Process workloads also take `start_method` (default: the platform's, `fork` on Linux, which is
what legacy users got).
"""

from __future__ import annotations

import json
import math
import os
import statistics
import sys
import time
import types
from functools import cache, partial
from typing import Any, Callable, Dict, List, Optional

# The legacy library is imported lazily by `_import_legacy`, after stdout is protected.
LLM: Any = None
LLMPool: Any = None
ProcessLLM: Any = None
TextGenerationTask: Any = None
LLMOutput: Any = None

_STUBBED_MODULE = "huggingface_hub.inference._text_generation"


def _stub_text_generation_module() -> None:
    """Provide the one `huggingface_hub` module that distilabel 0.6.0 imports and hub>=0.21 lacks.

    Only `InferenceEndpointsLLM` uses it (for `TextGenerationError`), which no workload runs.
    The pinned venv (huggingface_hub==0.20.3) has the real module; this keeps the script usable
    in a venv where distilabel 0.6.0 sits beside a current hub.
    """
    module = types.ModuleType(_STUBBED_MODULE)

    class TextGenerationError(Exception):
        """Stand-in for the removed `huggingface_hub` exception."""

    module.TextGenerationError = TextGenerationError  # type: ignore[attr-defined]
    sys.modules[_STUBBED_MODULE] = module


def _import_legacy() -> Dict[str, Any]:
    """Import legacy distilabel's LLM layer, stubbing the missing hub module only if needed."""
    global LLM, LLMPool, ProcessLLM, TextGenerationTask, LLMOutput
    import importlib.util

    stubbed = False
    try:
        missing = importlib.util.find_spec(_STUBBED_MODULE) is None
    except ModuleNotFoundError:  # `huggingface_hub` itself is absent: let distilabel say so
        missing = False
    if missing:
        _stub_text_generation_module()
        stubbed = True

    import distilabel
    import huggingface_hub
    import multiprocess
    from distilabel.llm import LLM, LLMPool, ProcessLLM
    from distilabel.llm.utils import LLMOutput
    from distilabel.tasks import TextGenerationTask

    return {
        "distilabel": distilabel.__version__,
        "huggingface_hub": huggingface_hub.__version__,
        "hub_module_stubbed": stubbed,
        "python": ".".join(map(str, sys.version_info[:3])),
        "start_method": multiprocess.get_start_method(),
    }


@cache
def _make_sleep_llm_class() -> type:
    """Build the fake legacy `LLM` (a class statement needs the lazily imported base)."""

    class SleepLLM(LLM):
        """Legacy-API twin of `distilabel_llm.testing.FakeLLM`: sleeps, formats, parses.

        Sleeps `latency` per `_generate` call plus `latency_per_generation` per row and
        generation, then builds prompts and parses outputs with the task like a real backend.
        """

        def __init__(
            self,
            task: Any,
            model_name: str = "fake",
            latency: float = 0.0,
            latency_per_generation: float = 0.0,
            num_threads: Optional[int] = None,
        ) -> None:
            super().__init__(task, num_threads=num_threads, prompt_format="default")
            self._model_name = model_name
            self.latency = latency
            self.latency_per_generation = latency_per_generation

        @property
        def model_name(self) -> str:
            return self._model_name

        def _generate(
            self, inputs: List[Dict[str, Any]], num_generations: int = 1
        ) -> List[List[Any]]:
            delay = self.latency + self.latency_per_generation * len(inputs) * num_generations
            if delay > 0:
                time.sleep(delay)
            prompts = self._generate_prompts(inputs, default_format="default")
            outputs = []
            for row, prompt in zip(inputs, prompts):
                row_outputs = []
                for k in range(num_generations):
                    raw = f"{self._model_name} #{k}: {row['input']}"
                    row_outputs.append(
                        LLMOutput(
                            model_name=self._model_name,
                            prompt_used=prompt,
                            raw_output=raw,
                            parsed_output=self.task.parse_output(raw),
                        )
                    )
                outputs.append(row_outputs)
            return outputs

    return SleepLLM


def _load_sleep_llm(task: Any, **kwargs: Any) -> Any:
    """`load_llm_fn` for legacy `ProcessLLM`: runs in the child process."""
    if LLM is None:  # a spawned or forkserver child re-imported this module without `main`
        _import_legacy()
    return _make_sleep_llm_class()(task, **kwargs)


def _inputs(count: int) -> List[Dict[str, str]]:
    return [{"input": f"question {i}"} for i in range(count)]


def _check_rows(generations: List[List[Any]], rows: int, num_generations: int) -> None:
    """Fail loudly if legacy returned the wrong shape, so no figure is computed on bad work."""
    if len(generations) != rows or any(len(row) != num_generations for row in generations):
        shape = [len(row) for row in generations]
        raise RuntimeError(f"expected {rows} rows of {num_generations}, got {shape[:8]}...")


def run_threads(threads: int = 32, requests: int = 256, latency: float = 0.05) -> Dict[str, Any]:
    """`requests` single-row calls of `latency` s through a legacy `LLM(num_threads=threads)`."""
    llm = _make_sleep_llm_class()(TextGenerationTask(), latency=latency, num_threads=threads)
    try:
        start = time.perf_counter()
        generations = llm.generate(_inputs(requests)).result()
        wall = time.perf_counter() - start
    finally:
        llm.thread_pool_executor.shutdown(wait=True)
    _check_rows(generations, requests, 1)
    ideal = math.ceil(requests / threads) * latency
    return {"wall_s": wall, "ideal_s": ideal, "ratio": wall / ideal, "rate_per_s": requests / wall}


def _start_process_llm(load_llm_fn: Callable[[Any], Any]) -> tuple:
    """Start a legacy `ProcessLLM` and return it with its ready time (first round trip)."""
    llm = ProcessLLM(task=TextGenerationTask(), load_llm_fn=load_llm_fn)
    start = time.perf_counter()
    llm.generate(_inputs(1)).result()
    return llm, time.perf_counter() - start


def run_process_sequential(requests: int = 3000) -> Dict[str, Any]:
    """No-op model in a legacy `ProcessLLM`: `requests` awaited one-row round trips."""
    llm, ready = _start_process_llm(partial(_load_sleep_llm, model_name="noop"))
    try:
        row = _inputs(1)
        start = time.perf_counter()
        for _ in range(requests):
            _check_rows(llm.generate(row).result(), 1, 1)
        wall = time.perf_counter() - start
    finally:
        llm.teardown()
    return {"rate_per_s": requests / wall, "wall_s": wall, "ready_s": ready}


def run_process_pipelined(requests: int = 3000) -> Dict[str, Any]:
    """No-op model in a legacy `ProcessLLM`: `requests` one-row calls submitted, then awaited."""
    llm, ready = _start_process_llm(partial(_load_sleep_llm, model_name="noop"))
    try:
        row = _inputs(1)
        start = time.perf_counter()
        futures = [llm.generate(row) for _ in range(requests)]
        results = [future.result() for future in futures]
        wall = time.perf_counter() - start
    finally:
        llm.teardown()
    for generations in results:
        _check_rows(generations, 1, 1)
    return {"rate_per_s": requests / wall, "wall_s": wall, "ready_s": ready}


def _run_pool(latencies: List[float], inputs: int, num_generations: int) -> Dict[str, Any]:
    """Legacy `LLMPool` of `ProcessLLM`s whose models take `latencies[i]` s per generation.

    Every member is started and warmed first, so `wall_s` is the generation makespan alone;
    `ideal_s` is the makespan with the work shared in proportion to each member's speed.
    """
    llms = [
        ProcessLLM(
            task=TextGenerationTask(),
            load_llm_fn=partial(
                _load_sleep_llm, model_name=f"member-{i}", latency_per_generation=latency
            ),
        )
        for i, latency in enumerate(latencies)
    ]
    try:
        start = time.perf_counter()
        for future in [llm.generate(_inputs(1)) for llm in llms]:
            future.result()
        startup = time.perf_counter() - start
        pool = LLMPool(llms=llms)
        start = time.perf_counter()
        generations = pool.generate(_inputs(inputs), num_generations=num_generations)
        wall = time.perf_counter() - start
    finally:
        for llm in llms:
            llm.teardown()
    _check_rows(generations, inputs, num_generations)
    per_member: Dict[str, int] = {}
    for row in generations:
        for output in row:
            per_member[output["model_name"]] = per_member.get(output["model_name"], 0) + 1
    ideal = inputs * num_generations / sum(1.0 / latency for latency in latencies)
    return {
        "wall_s": wall,
        "ideal_s": ideal,
        "ratio": wall / ideal,
        "startup_s": startup,
        "outputs_per_member": dict(sorted(per_member.items())),
    }


def run_pool_replicas(
    members: int = 4,
    inputs: int = 64,
    latency_per_generation: float = 0.02,
    num_generations: int = 1,
) -> Dict[str, Any]:
    """`members` identical replicas; legacy sends all `num_generations=1` work to one of them."""
    return _run_pool([latency_per_generation] * members, inputs, num_generations)


def run_pool_mixed(
    latencies: Optional[List[float]] = None, inputs: int = 16, num_generations: int = 4
) -> Dict[str, Any]:
    """Members of different speeds; legacy splits generations evenly, so the slowest bounds it."""
    return _run_pool(list(latencies or [0.01, 0.1]), inputs, num_generations)


WORKLOADS: Dict[str, Callable[..., Dict[str, Any]]] = {
    "threads": run_threads,
    "process_sequential": run_process_sequential,
    "process_pipelined": run_process_pipelined,
    "pool_replicas": run_pool_replicas,
    "pool_mixed": run_pool_mixed,
}


def _summarise(runs: List[Dict[str, Any]], pick: Callable[[List[float]], float]) -> Dict:
    """Apply `pick` (median, min, max) to every numeric figure of the runs."""
    return {
        key: pick([run[key] for run in runs])
        for key, value in runs[0].items()
        if isinstance(value, (int, float)) and not isinstance(value, bool)
    }


def _run(workload: str, params: Dict[str, Any]) -> Dict[str, Any]:
    if workload not in WORKLOADS:
        raise SystemExit(f"unknown workload {workload!r}; choose one of {sorted(WORKLOADS)}")
    params = dict(params)
    repeats = int(params.pop("repeats", 1))
    start_method = params.pop("start_method", None)
    versions = _import_legacy()
    if start_method is not None:
        import multiprocess

        multiprocess.set_start_method(start_method, force=True)
        versions["start_method"] = start_method
    runs = [WORKLOADS[workload](**params) for _ in range(max(repeats, 1))]
    return {
        "workload": workload,
        "params": params,
        "versions": versions,
        "runs": runs,
        "median": _summarise(runs, statistics.median),
        "min": _summarise(runs, min),
        "max": _summarise(runs, max),
    }


def _parse_params(argv: List[str]) -> Dict[str, Any]:
    if not argv:
        return {}
    if len(argv) != 2 or argv[0] != "--params":
        raise SystemExit("usage: legacy_workloads.py WORKLOAD [--params JSON | --params -]")
    params = json.loads(sys.stdin.read() if argv[1] == "-" else argv[1])
    if not isinstance(params, dict):
        raise SystemExit("--params must be a JSON object, e.g. '{\"threads\": 32}'")
    return params


def main(argv: List[str]) -> int:
    """Run one workload (or `check`) and print its JSON result on the real stdout."""
    if not argv:
        raise SystemExit(__doc__)
    # Keep stdout for the one JSON line: anything the legacy library or its forked children
    # print at the file-descriptor level goes to stderr instead.
    result_stream = os.fdopen(os.dup(1), "w")
    sys.stdout.flush()
    os.dup2(2, 1)
    if argv[0] == "check":
        result = {"versions": _import_legacy()}
    else:
        result = _run(argv[0], _parse_params(argv[1:]))
    result_stream.write(json.dumps(result) + "\n")
    result_stream.flush()
    return 0


if __name__ == "__main__":  # the guard lets `start_method="spawn"` re-import this safely
    sys.exit(main(sys.argv[1:]))
