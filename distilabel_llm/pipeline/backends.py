"""Building a job's models from a backend name and a model path, as the CLI and demo do.

`load_llm` runs where the model lives (a `ProcessLLM`'s child, usually), so it is a plain
module-level function taking only picklable arguments; `build_llm` wraps it in the process or
pool the job asked for. `check_backend` fails early, in the caller, on what would otherwise
only fail in a child: a missing extra or a missing model file.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Sequence, Union

from distilabel_llm.errors import MissingExtraError, ModelError
from distilabel_llm.llm.core.llm import LLM
from distilabel_llm.tasks.base import Task

__all__ = ["BACKENDS", "ModelError", "build_llm", "check_backend", "load_llm"]

BACKENDS = ("transformers", "llama-cpp", "openai")

# backend -> (module it imports, package to install, extra that installs it)
_REQUIREMENTS = {
    "transformers": ("transformers", "transformers", "transformers"),
    "llama-cpp": ("llama_cpp", "llama-cpp-python", "llama-cpp"),
    "openai": ("openai", "openai", "openai"),
}


def check_backend(backend: str, model: str) -> None:
    """Fails now, naming the fix, if `backend` cannot load `model` here.

    Raises:
        ValueError: for an unknown backend.
        MissingExtraError: if the backend's package is not installed.
        ModelError: if a local model path does not exist.
    """
    if backend not in _REQUIREMENTS:
        raise ValueError(f"Unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}.")
    module, package, extra = _REQUIREMENTS[backend]
    if importlib.util.find_spec(module) is None:
        raise MissingExtraError(package, extra)
    if backend == "llama-cpp" and not Path(model).expanduser().is_file():
        raise ModelError(f"No GGUF model file at {model!r}; give the path of a .gguf file.")
    if (
        backend == "transformers"
        and _looks_like_path(model)
        and not Path(model).expanduser().is_dir()
    ):
        raise ModelError(
            f"No model directory at {model!r}; give a directory saved with "
            "`save_pretrained`, or a Hugging Face Hub model id such as 'gpt2'."
        )


def load_llm(
    task: Task,
    *,
    backend: str,
    model: str,
    max_new_tokens: int = 128,
    threads: Optional[int] = None,
    gpu: bool = False,
    base_url: Optional[str] = None,
    api_key: Optional[str] = None,
    continuous_batching: bool = False,
    max_concurrency: Optional[int] = None,
    max_requests_per_minute: Optional[int] = None,
    max_tokens_per_minute: Optional[int] = None,
    input_cost_per_million_tokens: Optional[float] = None,
    output_cost_per_million_tokens: Optional[float] = None,
) -> LLM:
    """Loads `model` with `backend` in this process.

    Args:
        task: the task the LLM runs.
        backend: one of `BACKENDS`.
        model: a GGUF file (llama-cpp), a directory or Hub id (transformers), or a model name
            (openai).
        max_new_tokens: most tokens generated per output.
        threads: CPU threads the model may use (local backends); the library default if None.
        gpu: put the whole model on the (first visible) GPU.
        base_url, api_key: where and how to reach an OpenAI-compatible server.
        continuous_batching: transformers decodes with continuous batching
            (`TransformersLLM(continuous_batching=True)`).
        max_concurrency: the most requests in flight at once (openai); one at a time if None.
        max_requests_per_minute, max_tokens_per_minute: the provider's limits, which requests
            are paced to (openai).
        input_cost_per_million_tokens, output_cost_per_million_tokens: the model's prices in
            USD (openai).
    """
    api_options = {
        "max_concurrency": max_concurrency,
        "max_requests_per_minute": max_requests_per_minute,
        "max_tokens_per_minute": max_tokens_per_minute,
        "input_cost_per_million_tokens": input_cost_per_million_tokens,
        "output_cost_per_million_tokens": output_cost_per_million_tokens,
    }
    _check_options(backend, continuous_batching, api_options)
    if backend == "transformers":
        return _load_transformers(task, model, max_new_tokens, threads, gpu, continuous_batching)
    if backend == "llama-cpp":
        from distilabel_llm.llm.backends.llama_cpp import LlamaCppLLM

        return LlamaCppLLM.from_path(
            model,
            task,
            n_threads=threads,
            n_gpu_layers=-1 if gpu else 0,
            max_new_tokens=max_new_tokens,
        )
    if backend == "openai":
        from distilabel_llm.llm.backends.openai import OpenAILLM

        return OpenAILLM(
            task,
            model=model,
            base_url=base_url,
            api_key=api_key,
            max_new_tokens=max_new_tokens,
            **api_options,
        )
    raise ValueError(f"Unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}.")


def _check_options(
    backend: str, continuous_batching: bool, api_options: Dict[str, Optional[float]]
) -> None:
    """Refuses an option that `backend` does not have, rather than ignore it."""
    if continuous_batching and backend != "transformers":
        raise ValueError(
            f"continuous_batching is a transformers setting; the {backend} backend has none."
        )
    given = [name for name, value in api_options.items() if value is not None]
    if given and backend != "openai":
        raise ValueError(
            f"{given[0]} is an openai setting, for API models; the {backend} backend runs a "
            "local model (it batches rows instead)."
        )


def _load_transformers(
    task: Task,
    model: str,
    max_new_tokens: int,
    threads: Optional[int],
    gpu: bool,
    continuous_batching: bool,
) -> LLM:
    import transformers

    from distilabel_llm.llm.backends.transformers import TransformersLLM

    # Our display shows progress; transformers' "Loading weights" bar would cut into it.
    transformers.utils.logging.disable_progress_bar()
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    device = "cuda" if gpu else None
    return TransformersLLM.from_pretrained(
        model,
        task,
        device=device,
        max_new_tokens=max_new_tokens,
        continuous_batching=continuous_batching,
    )


def build_llm(
    task: Task,
    backend: str,
    model: str,
    processes: int = 1,
    devices: Optional[Sequence[Union[int, str]]] = None,
    env: Optional[Dict[str, str]] = None,
    ray_replicas: int = 0,
    ray_gpus: float = 0,
    ray_address: Optional[str] = None,
    **options: Any,
) -> Any:
    """Builds the generator or labeller of a job, ready to hand to `Pipeline`.

    Args:
        task: the task the model runs.
        backend, model: as for `load_llm`.
        processes: 0 to load the model in this process, 1 for a `ProcessLLM`, more for an
            `LLMPool` of that many replicas. An OpenAI client always runs in this process
            (`max_concurrency` sets its requests in flight), so it takes 0 or 1 only.
        devices: GPUs for an `LLMPool` with one replica on each; overrides `processes`.
        env: environment variables for the model processes.
        ray_replicas: 1 for a `RayLLM`, more for an `LLMPool` of that many Ray replicas;
            overrides `processes` and `devices`.
        ray_gpus: GPUs each Ray replica reserves (a fraction shares a GPU).
        ray_address: the Ray cluster; by default `RAY_ADDRESS`, else a new local one.
        **options: further arguments of `load_llm`.

    Returns:
        An `LLM`, a `ProcessLLM`, a `RayLLM` or an `LLMPool`; the caller tears it down.

    Raises:
        ValueError: for replicas of an openai model, which runs in this process.
    """
    check_backend(backend, model)
    if processes < 0:
        raise ValueError(f"`processes` must be 0 or more, not {processes!r}.")
    load = functools.partial(load_llm, backend=backend, model=model, **options)
    if backend == "openai":
        if processes > 1 or devices or ray_replicas:
            raise ValueError(
                "The openai backend runs no model, so it has no replicas to place: leave "
                "`processes`, `devices` and `ray_replicas` unset, and pass `max_concurrency` "
                "for requests in flight at once."
            )
        return load(task)
    from distilabel_llm.llm.members.process import ProcessLLM
    from distilabel_llm.llm.pool.pool import LLMPool

    if ray_replicas:
        threads = options.get("threads")
        return _build_ray(task, load, ray_replicas, ray_gpus, ray_address, threads)
    if devices:
        if len(devices) == 1:
            device_env = {**(env or {}), "CUDA_VISIBLE_DEVICES": str(devices[0])}
            return ProcessLLM(task, functools.partial(load, gpu=True), env=device_env)
        return LLMPool.from_devices(task, functools.partial(load, gpu=True), devices, env=env)
    if processes == 0:
        return load(task)
    if processes == 1:
        return ProcessLLM(task, load, env=env)
    return LLMPool.from_replicas(task, load, replicas=processes, env=env)


def _build_ray(
    task: Task,
    load: Callable[..., LLM],
    replicas: int,
    gpus: float,
    address: Optional[str],
    threads: Optional[int],
) -> Any:
    """A `RayLLM`, or an `LLMPool` of `replicas` of them."""
    from distilabel_llm.llm.members.ray import RayLLM
    from distilabel_llm.llm.pool.pool import LLMPool

    ray_load = functools.partial(load, gpu=gpus > 0)
    ray_kwargs = {"num_cpus": threads or 1, "num_gpus": gpus, "address": address}
    if replicas == 1:
        return RayLLM(task, ray_load, **ray_kwargs)
    return LLMPool.from_ray(task, ray_load, replicas=replicas, **ray_kwargs)


def _looks_like_path(model: str) -> bool:
    """Whether `model` is meant as a local path rather than a Hub id like 'org/name'."""
    return (
        model.startswith((".", "~", os.sep))
        or model.count("/") > 1
        or Path(model).expanduser().exists()
    )
