"""An API model in a batch job: `Pipeline` over an OpenAI-compatible server, against a bare loop.

The server is the tests' fault server (`tests/backends/fault_server.py`) on 127.0.0.1, in a
process of its own (as a real server is: its threads do not take this process's GIL), answering
every chat request after `LATENCY` (100 ms), with no rate limit. Both clients send the same rows
with at most `CONCURRENCY` requests in flight, in this process, timed in turn:

- ours: `Pipeline(generator=OpenAILLM(..., max_concurrency=CONCURRENCY)).generate(rows,
  batch_size=..., display_progress_bar=False)`, with the README's `batch_size=64` and with the
  default batch size (16);
- the bare loop: `openai.AsyncOpenAI(max_retries=0).chat.completions.create(...)` for every
  row under an `asyncio.Semaphore(CONCURRENCY)`, the same messages and `max_tokens`.

Each side gets a client of its own per run, made before the clock starts. Figures: a job's wall
time against the bare loop's, the ratio taken run by run (target: <= 1.1x); the note gives the
ideal (the rows' waves of `LATENCY`, `CONCURRENCY` at a time).

Run: `python -m benchmarks.api_pipeline [--quick]` or `python benchmarks/api_pipeline.py
[--quick]`.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: import from the repository, not benchmarks/
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import asyncio
import contextlib
import math
import subprocess
import time
from typing import Any, Dict, Iterator, List, Optional

from benchmarks._summary import COLUMNS, cells, judge, skipped_row, summary_row
from benchmarks._table import print_table, run_script
from distilabel_llm.tasks import TextGenerationTask

__all__ = ["main", "run"]

LATENCY = 0.1
CONCURRENCY = 64
BATCH_SIZES = (64, 16)  # the README's, and `Pipeline.generate`'s default
MAX_TOKENS = 128
SYSTEM = "Be brief."
TARGET = 1.1
MODEL = "fault-model"
_BACKENDS = Path(__file__).resolve().parents[1] / "tests" / "backends"
# The fault server in a process of its own, serving until its standard input closes.
_SERVE = """
import sys
sys.path.insert(0, sys.argv[1])
import fault_server
with fault_server.FaultServer(models=[sys.argv[2]]) as server:
    server.rule("", fault_server.Fault(delay=float(sys.argv[3])))
    print(server.url, flush=True)
    sys.stdin.read()
"""


@contextlib.contextmanager
def _server() -> Iterator[str]:
    """The base URL of a fault server answering every chat request after `LATENCY`."""
    command = [sys.executable, "-c", _SERVE, str(_BACKENDS), MODEL, str(LATENCY)]
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert process.stdin is not None and process.stdout is not None
    try:
        url = process.stdout.readline().strip()
        if not url:
            raise RuntimeError(f"the fault server did not start (exit status {process.wait()})")
        yield url
    finally:
        process.stdin.close()  # it stops serving and exits
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        process.stdout.close()


def _rows(count: int) -> List[Dict[str, Any]]:
    return [{"input": f"Question number {i}?"} for i in range(count)]


def _ours(url: str, rows: List[Dict[str, Any]], batch_size: int) -> float:
    """Seconds a `Pipeline` job over `rows` takes."""
    from distilabel_llm.llm.backends.openai import OpenAILLM
    from distilabel_llm.pipeline import Pipeline

    with OpenAILLM(
        TextGenerationTask(system_prompt=SYSTEM),
        model=MODEL,
        api_key="none",
        base_url=url,
        max_new_tokens=MAX_TOKENS,
        max_concurrency=CONCURRENCY,
        validate_model=False,
    ) as llm:
        pipeline = Pipeline(generator=llm)
        start = time.perf_counter()
        done = pipeline.generate(rows, batch_size=batch_size, display_progress_bar=False)
        seconds = time.perf_counter() - start
    if len(done) != len(rows) or any(row["error"] is not None for row in done):
        raise RuntimeError("the pipeline lost or failed rows")
    return seconds


def _bare(url: str, rows: List[Dict[str, Any]]) -> float:
    """Seconds the bare `AsyncOpenAI` loop takes over `rows`."""
    import openai

    async def send_all() -> float:
        client = openai.AsyncOpenAI(api_key="none", base_url=url, max_retries=0)
        gate = asyncio.Semaphore(CONCURRENCY)

        async def one(row: Dict[str, Any]) -> Optional[str]:
            messages = [
                {"role": "system", "content": SYSTEM},
                {"role": "user", "content": row["input"]},
            ]
            async with gate:
                completion = await client.chat.completions.create(
                    model=MODEL, messages=messages, max_tokens=MAX_TOKENS
                )
            return completion.choices[0].message.content

        try:
            start = time.perf_counter()
            answers = await asyncio.gather(*(one(row) for row in rows))
            seconds = time.perf_counter() - start
        finally:
            await client.close()
        if not all(isinstance(answer, str) for answer in answers):
            raise RuntimeError("the bare loop got an answer without text")
        return seconds

    return asyncio.run(send_all())


def run(quick: bool = False) -> List[Dict[str, Any]]:
    """Runs ours (each batch size) and the bare loop in turn, `repeats` times; returns summary
    rows."""
    try:
        import openai  # noqa: F401
    except ImportError:
        return [skipped_row("api_pipeline", "the `openai` extra is not installed")]
    count, repeats = (2 * CONCURRENCY, 3) if quick else (400, 5)
    rows = _rows(count)
    ours: Dict[int, List[float]] = {size: [] for size in BATCH_SIZES}
    bare: List[float] = []
    with _server() as url:
        _ours(url, rows[:CONCURRENCY], BATCH_SIZES[0])  # warm-up: imports, first connections
        _bare(url, rows[:CONCURRENCY])
        for _ in range(repeats):
            for size in BATCH_SIZES:
                ours[size].append(_ours(url, rows, size))
            bare.append(_bare(url, rows))
    ideal = math.ceil(count / CONCURRENCY) * LATENCY
    out = []
    for size in BATCH_SIZES:
        default = " (the default)" if size == 16 else ""
        row = summary_row(
            "api_pipeline",
            f"Pipeline(OpenAILLM(max_concurrency={CONCURRENCY})).generate(batch_size={size}"
            f"{default}), {count} rows, {LATENCY * 1000:g} ms a request, no limit",
            "s",
            ours[size],
            reference=bare,
            reference_kind="bare AsyncOpenAI loop",
            target=f"<= {TARGET:g}x the bare loop",
            note=f"ideal {ideal:.2f} s: {math.ceil(count / CONCURRENCY)} waves of "
            f"{CONCURRENCY} requests; server in its own process",
        )
        judge(row, "<=", TARGET)
        out.append(row)
    return out


def print_results(rows: List[Dict[str, Any]]) -> None:
    print_table("An API model in a Pipeline job", COLUMNS, [cells(row) for row in rows])


def main(argv: Optional[List[str]] = None) -> int:
    return run_script(__doc__, run, print_results, argv)


if __name__ == "__main__":
    raise SystemExit(main())
