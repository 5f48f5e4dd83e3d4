"""A pipeline job run as its own process by the tests that kill or interrupt it.

Usage: python fake_job.py CHECKPOINT ROWS RUN SECONDS_PER_ROW [BATCH_SIZE]

Generates for ROWS prompts with a `FakeLLM`, checkpointing to CHECKPOINT. Each output's text ends
with " [seed=RUN]" (the model's default seed, which the job does not record), so that a test can
tell which run wrote a row.
Exits 0 when done, 130 after a Ctrl-C (having saved the finished rows).
"""

from __future__ import annotations

import signal
import sys

from distilabel_llm.pipeline import JobInterrupted, Pipeline
from distilabel_llm.tasks import TextGenerationTask
from distilabel_llm.testing import FakeLLM


def main() -> int:
    # As in a terminal, whatever the runner's shell did (a background job ignores SIGINT).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    checkpoint, rows, run, seconds_per_row = sys.argv[1:5]
    batch_size = int(sys.argv[5]) if len(sys.argv) > 5 else 2
    generator = FakeLLM(
        TextGenerationTask(),
        latency_per_generation=float(seconds_per_row),
        show_settings=True,
        generation_kwargs={"seed": int(run)},
    )
    prompts = [{"input": f"prompt {i}"} for i in range(int(rows))]
    try:
        Pipeline(generator=generator).generate(
            prompts, batch_size=batch_size, checkpoint=checkpoint, display_progress_bar=False
        )
    except JobInterrupted as stopped:
        print(f"interrupted with {len(stopped.rows)} rows saved", flush=True)
        return 130
    print("done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
