"""`distilabel-llm demo`: a short job on tiny local models, with no key and no download.

It builds (once, then cached) a tiny llama model in both Hugging Face and GGUF form, starts a
pool of two model processes, one llama.cpp and one transformers, and runs a checkpointed job
over built-in prompts with the progress display, then prints where the result is and a
summary. The tiny model's answers are noise: the demo shows the machinery, not a model.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

from rich.console import Console
from rich.markup import escape

from distilabel_llm.pipeline.backends import check_backend, load_llm
from distilabel_llm.pipeline.core import Pipeline
from distilabel_llm.pipeline.summary import summary_table
from distilabel_llm.tasks import TextGenerationTask

__all__ = ["DEMO_PROMPTS", "run_demo"]

DEMO_PROMPTS = [
    "Explain what a hash table is in one sentence.",
    "Give three tips for writing clear emails.",
    "What is the capital of Australia?",
    "Write a haiku about the sea.",
    "How do vaccines train the immune system?",
    "Summarise the water cycle for a child.",
    "What does a compiler do?",
    "Name two benefits of regular exercise.",
    "Translate 'good morning' into French and Spanish.",
    "Why is the sky blue?",
    "Suggest a name for a bakery that sells bread made with seaweed.",
    "What is the difference between weather and climate?",
    "Write a Python function that reverses a string.",
    "How many minutes are in a day?",
    "Describe the taste of a lemon to someone who never had one.",
    "What causes the seasons on Earth?",
    "List three uses of a paperclip besides holding paper.",
    "What is photosynthesis?",
    "Give an example of a prime number greater than 50.",
    "Write one sentence that uses the word 'serendipity'.",
    "What is the boiling point of water at sea level in Celsius?",
    "Why do cats purr?",
    "Explain recursion with an everyday example.",
    "What is a good way to start learning to draw?",
    "Who wrote 'Pride and Prejudice'?",
    "What are the three primary colours of light?",
    "Write a short motivational quote about learning.",
    "How does a bicycle stay upright while moving?",
    "What is the plural of 'mouse' when it means a computer device?",
    "Give a one-line definition of machine learning.",
    "What should you pack for a day hike?",
    "Explain what an API is to a non-programmer.",
]

# Each model process gets one CPU thread: two processes then fill two cores without fighting.
_THREADS_PER_PROCESS = 1


def run_demo(
    output_dir: Union[str, Path] = "demo-output",
    rows: int = len(DEMO_PROMPTS),
    max_new_tokens: int = 24,
    cache_dir: Optional[Union[str, Path]] = None,
    console: Optional[Console] = None,
    backends: Sequence[str] = ("llama-cpp", "transformers"),
) -> Path:
    """Runs the demo job and prints its summary; returns the JSONL file it wrote.

    Args:
        output_dir: where `generations.jsonl` goes; it is written anew on each run.
        rows: how many built-in prompts to use (they repeat past 32).
        max_new_tokens: tokens generated per answer.
        cache_dir: where the tiny models are built and kept.
        console: where to print; standard output by default.
        backends: the backend of each of the pool's two members ("llama-cpp" compiles
            llama-cpp-python when installed; "transformers" twice needs no compiler).
    """
    from distilabel_llm.llm.members.process import ProcessLLM
    from distilabel_llm.llm.pool.pool import LLMPool
    from distilabel_llm.testing.tiny_models import ensure_tiny_models

    console = console if console is not None else Console()
    with console.status("Building the tiny demo models (cached after the first run)..."):
        models = ensure_tiny_models(cache_dir)
    paths = {"llama-cpp": str(models.gguf_path), "transformers": str(models.hf_path)}
    for backend in set(backends):
        check_backend(backend, paths[backend])
    output = Path(output_dir) / "generations.jsonl"
    output.unlink(missing_ok=True)  # a demo shows the whole job every time

    task = TextGenerationTask()
    load = functools.partial(load_llm, max_new_tokens=max_new_tokens, threads=_THREADS_PER_PROCESS)
    # The tiny models load in milliseconds: transformers' loading bar would only add noise.
    quiet = {"HF_HUB_DISABLE_PROGRESS_BARS": "1"}
    members = [
        ProcessLLM(
            task,
            functools.partial(load, backend=backend, model=paths[backend]),
            env=quiet,
        )
        for backend in backends
    ]
    prompts = [{"input": DEMO_PROMPTS[i % len(DEMO_PROMPTS)]} for i in range(rows)]
    with LLMPool(members, strategy="balance") as pool:
        with console.status(f"Starting 2 model processes ({' and '.join(backends)})..."):
            for member in members:
                member.wait_loaded()  # a load failure raises here, with the child's traceback
        pipeline = Pipeline(generator=pool)
        results = pipeline.generate(prompts, batch_size=8, checkpoint=output, console=console)
        assert pipeline.stats is not None
        console.print()
        console.print(summary_table(pipeline.stats, pool))
    _print_result(console, results, output)
    return output


def _print_result(console: Console, results: List[Dict[str, Any]], output: Path) -> None:
    sample = results[0]
    console.print(
        f"\nFirst row: {sample['input']!r} -> {sample['generations'][0]!r}",
        soft_wrap=True,
        highlight=False,
        markup=False,
    )
    console.print(
        f"Wrote {len(results)} rows to [bold]{escape(str(output))}[/bold]", soft_wrap=True
    )
