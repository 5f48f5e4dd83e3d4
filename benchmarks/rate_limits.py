"""API models at a provider's rate limit: throughput against the limit, and 429 storms.

The server is the tests' fault server (`tests/backends/fault_server.py`) on 127.0.0.1,
enforcing a limit of its own as strictly as a provider can: at most `LIMIT` chat requests in any
second (a sliding window; one more gets a 429 with a `Retry-After` of the seconds until the
window admits one), each answered after `LATENCY`. Every client sends the same rows with at most
`IN_FLIGHT` requests in flight and up to 5 retries a request:

- ours at a configured limit: `OpenAILLM(max_requests_per_minute=60 * LIMIT)`;
- ours with no limit configured: the window cut by 429s, `Retry-After` pausing every sender;
- the `openai` client's own retries (`AsyncOpenAI(max_retries=5)` under an asyncio semaphore),
  as code without a limiter of its own sends them.

Figures: the steady rate, requests answered per second against the limit (target: ours at a
configured limit >= 0.9x), and the 429s the server sent, ours against the `openai` client's
retries on the same rows. The steady rate leaves out the first `LIMIT` answers: a sliding window
lets any client have a whole window's worth at once when a run starts, which would flatter a
short run of the clients that burst. The note of each row gives the 429s, the extra requests per
row, the rows that failed and the time taken.

Run: `python -m benchmarks.rate_limits [--quick]` or `python benchmarks/rate_limits.py [--quick]`.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: import from the repository, not benchmarks/
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import asyncio
import importlib
import logging
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional

from benchmarks._summary import COLUMNS, cells, judge, skipped_row, summary_row
from benchmarks._table import print_table, run_script
from distilabel_llm.tasks import TextGenerationTask

__all__ = ["main", "run"]

LIMIT = 50  # requests a second, enforced by the server
LATENCY = 0.02
IN_FLIGHT = 16
RETRIES = 5
TARGET = 0.9
MODEL = "fault-model"
_BACKENDS = Path(__file__).resolve().parents[1] / "tests" / "backends"


@dataclass
class Outcome:
    """One client's run against a fresh server."""

    seconds: float
    rows: int
    failed: int
    requests: int
    refused: int
    answered_at: List[float]  # the server's answers with a completion, in time order

    @property
    def per_second(self) -> float:
        """Answers a second after the first `LIMIT` (see the module's docstring)."""
        times = self.answered_at
        if len(times) <= LIMIT:
            return float("nan")
        return (len(times) - LIMIT) / (times[-1] - times[LIMIT - 1])

    def note(self) -> str:
        return (
            f"{self.refused} 429s, {(self.requests - self.rows) / self.rows:.2f} extra requests "
            f"a row, rows failed: {self.failed}, {self.seconds:.2f} s"
        )


def _fault_server() -> Any:
    if str(_BACKENDS) not in sys.path:  # where the fault server lives, beside its tests
        sys.path.insert(0, str(_BACKENDS))
    return importlib.import_module("fault_server")


def _against_server(client: Callable[[str, int], int], rows: int) -> Outcome:
    """Runs `client(base_url, rows)` (it returns the rows that failed) against a fresh server
    enforcing the limit."""
    fault_server = _fault_server()
    with fault_server.FaultServer(models=[MODEL]) as server:
        server.limit(requests=LIMIT, window=1.0)
        server.rule("", fault_server.Fault(delay=LATENCY))  # every request: its latency
        start = time.perf_counter()
        failed = client(server.url, rows)
        seconds = time.perf_counter() - start
        requests = server.requests()
        answered = sorted(r.answered_at for r in requests if r.status == 200 and r.answered_at)
        return Outcome(seconds, rows, failed, len(requests), server.rate_limited(), answered)


def _ours(**limits: Any) -> Callable[[str, int], int]:
    def client(url: str, rows: int) -> int:
        from distilabel_llm.llm.backends.openai import OpenAILLM

        with OpenAILLM(
            TextGenerationTask(system_prompt="Be brief."),
            model=MODEL,
            api_key="none",
            base_url=url,
            max_concurrency=IN_FLIGHT,
            max_retries=RETRIES,
            validate_model=False,
            **limits,
        ) as llm:
            generated = llm.generate([{"input": f"row {i}"} for i in range(rows)])
        return sum(row[0]["raw_output"] is None for row in generated)

    return client


def _openai_retries(url: str, rows: int) -> int:
    import openai

    async def send_all() -> int:
        client = openai.AsyncOpenAI(api_key="none", base_url=url, max_retries=RETRIES)
        gate = asyncio.Semaphore(IN_FLIGHT)

        async def one(index: int) -> bool:
            messages = [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": f"row {index}"},
            ]
            async with gate:
                try:
                    await client.chat.completions.create(
                        model=MODEL, messages=messages, max_tokens=128
                    )
                except openai.APIError:
                    return False
            return True

        try:
            answered = await asyncio.gather(*(one(index) for index in range(rows)))
        finally:
            await client.close()
        return answered.count(False)

    return asyncio.run(send_all())


def run(quick: bool = False) -> List[Dict[str, Any]]:
    """Runs each client `repeats` times in turn; returns summary rows."""
    try:
        import openai  # noqa: F401
    except ImportError:
        return [skipped_row("rate_limits", "the `openai` extra is not installed")]
    rows, repeats = (2 * LIMIT, 1) if quick else (4 * LIMIT, 3)
    clients = {
        "configured": _ours(max_requests_per_minute=60 * LIMIT),
        "adaptive": _ours(),
        "openai": _openai_retries,
    }
    outcomes: Dict[str, List[Outcome]] = {name: [] for name in clients}
    # Our retries log every row that finally fails; the table says how many did.
    logging.getLogger("distilabel_llm").setLevel(logging.CRITICAL)
    for _ in range(repeats):
        for name, client in clients.items():
            outcomes[name].append(_against_server(client, rows))
    shape = (
        f"{rows} rows, {IN_FLIGHT} in flight at most, {RETRIES} retries, {LATENCY * 1000:g} ms "
        f"a request, against a server limit of {LIMIT} requests in any second"
    )
    limit = [float(LIMIT)] * repeats
    configured = summary_row(
        "rate_limits",
        f"steady rate, requests answered a second, ours at a configured limit of "
        f"{60 * LIMIT}/min: {shape}",
        "req/s",
        [outcome.per_second for outcome in outcomes["configured"]],
        reference=limit,
        reference_kind="the limit",
        target=f">= {TARGET:g}x the limit",
        note=_notes(outcomes["configured"]),
    )
    judge(configured, ">=", TARGET)
    return [
        configured,
        summary_row(
            "rate_limits",
            f"steady rate, requests answered a second, ours with no limit configured: {shape}",
            "req/s",
            [outcome.per_second for outcome in outcomes["adaptive"]],
            reference=limit,
            reference_kind="the limit",
            note=_notes(outcomes["adaptive"]),
        ),
        summary_row(
            "rate_limits",
            f"steady rate, requests answered a second, the openai client's own retries: {shape}",
            "req/s",
            [outcome.per_second for outcome in outcomes["openai"]],
            reference=limit,
            reference_kind="the limit",
            note=_notes(outcomes["openai"]),
        ),
        summary_row(
            "rate_limits",
            f"429s sent, ours with no limit configured against the openai client's own "
            f"retries: {shape}",
            "429s",
            [float(outcome.refused) for outcome in outcomes["adaptive"]],
            reference=[float(outcome.refused) for outcome in outcomes["openai"]],
            reference_kind="openai client",
            note=f"ours at a configured limit: {_refused(outcomes['configured'])} 429s",
        ),
    ]


def _notes(outcomes: List[Outcome]) -> str:
    return "; ".join(outcome.note() for outcome in outcomes)


def _refused(outcomes: List[Outcome]) -> str:
    return ", ".join(str(outcome.refused) for outcome in outcomes)


def print_results(rows: List[Dict[str, Any]]) -> None:
    print_table("API models at a rate limit", COLUMNS, [cells(row) for row in rows])


def main(argv: Optional[List[str]] = None) -> int:
    return run_script(__doc__, run, print_results, argv)


if __name__ == "__main__":
    raise SystemExit(main())
