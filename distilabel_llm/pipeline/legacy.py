"""What scripts written for legacy distilabel 0.x pass to a pipeline, mapped onto ours.

`pipeline(...)` builds a `Pipeline` as legacy's factory did; `checkpoint_path` turns legacy's
checkpoint strategy object into our checkpoint file; `refuse` explains the arguments that have
no counterpart here.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Literal, Optional

if TYPE_CHECKING:
    from distilabel_llm.pipeline.pipeline import Pipeline

__all__ = ["checkpoint_path", "pipeline", "refuse"]

# Legacy `generate` arguments with no counterpart, and what to do instead.
_NO_COUNTERPART = {
    "enable_checkpoints": "pass `checkpoint=` (a JSONL file) to checkpoint, or leave it out",
    "save_frequency": "every finished batch is saved at once; nothing to set",
}

# Legacy's `pipeline("preference", subtask)` names, and our UltraFeedback constructors.
_PREFERENCE_SUBTASKS = {
    "text-quality": "for_overall_quality",
    "helpfulness": "for_helpfulness",
    "truthfulness": "for_truthfulness",
    "honesty": "for_honesty",
    "instruction-following": "for_instruction_following",
}
# The checkpoint file a legacy checkpoint strategy's folder receives.
CHECKPOINT_FILE = "checkpoint.jsonl"


def checkpoint_path(strategy: Any) -> Path:
    """The checkpoint file for legacy's `checkpoint_strategy` (a `DatasetCheckpoint`): a JSONL
    file in its `path` folder, saved after every batch (its `save_frequency` is not needed).

    Raises:
        ValueError: for a strategy that does not save to disk.
    """
    path = getattr(strategy, "path", None)
    kind = getattr(strategy, "strategy", "disk")
    if path is None or kind != "disk":
        raise ValueError(
            f"`checkpoint_strategy` {strategy!r} does not save to a folder on disk; only "
            "`DatasetCheckpoint(path=..., strategy='disk')` maps onto a checkpoint here. Pass "
            "`checkpoint='out.jsonl'` instead, and push the result where you like when done."
        )
    return Path(os.fspath(path)) / CHECKPOINT_FILE


def refuse(arguments: Dict[str, Any]) -> None:
    """Raises a `TypeError` naming each argument and what to do instead."""
    if not arguments:
        return
    reasons = "; ".join(
        f"`{name}` ({_NO_COUNTERPART[name]})"
        if name in _NO_COUNTERPART
        else f"`{name}` (not an argument of Pipeline.generate)"
        for name in arguments
    )
    raise TypeError(
        f"Pipeline.generate does not take {reasons}. See the README's 'Coming from "
        "distilabel 0.x' section."
    )


def pipeline(
    task: Literal["preference", "critique"],
    subtask: Optional[str] = None,
    *,
    generator: Optional[Any] = None,
    labeller: Optional[Any] = None,
    **kwargs: Any,
) -> Pipeline:
    """Legacy distilabel's factory: a `Pipeline` whose labeller rates generations.

    Without a `labeller`, one is built on `OpenAILLM`: UltraFeedback for `"preference"` (the
    `subtask` names the aspect: "text-quality", "helpfulness", "truthfulness", "honesty",
    "instruction-following"), UltraCM for `"critique"`.

    Args:
        task: "preference" or "critique".
        subtask: the UltraFeedback aspect, for "preference"; "text-quality" by default.
        generator: the LLM that writes the generations, if any.
        labeller: the LLM that rates them; built on `OpenAILLM` when None.
        **kwargs: for the built labeller: `model` (default "gpt-3.5-turbo"), `api_key` or
            legacy's `openai_api_key`, `max_new_tokens` (256), `temperature` (0),
            `num_threads`, `base_url`.

    Raises:
        ValueError: for an unknown task or subtask.
    """
    from distilabel_llm.pipeline.pipeline import Pipeline

    if labeller is None:
        labeller = _default_labeller(task, subtask, kwargs)
    elif kwargs:
        raise TypeError(
            f"{sorted(kwargs)} configure the labeller `pipeline` builds, but a `labeller` was "
            "given: set them on it."
        )
    return Pipeline(generator=generator, labeller=labeller)


def _default_labeller(task: str, subtask: Optional[str], options: Dict[str, Any]) -> Any:
    from distilabel_llm.llm.openai import OpenAILLM
    from distilabel_llm.tasks import UltraCMTask, UltraFeedbackTask

    if task == "preference":
        name = subtask or "text-quality"
        if name not in _PREFERENCE_SUBTASKS:
            raise ValueError(
                f"Unknown preference subtask {name!r}; choose one of "
                f"{', '.join(_PREFERENCE_SUBTASKS)}."
            )
        labelling_task = getattr(UltraFeedbackTask, _PREFERENCE_SUBTASKS[name])()
    elif task == "critique":
        if subtask not in (None, "ultracm"):
            raise ValueError(f"The critique task has one subtask, 'ultracm', not {subtask!r}.")
        labelling_task = UltraCMTask()
    else:
        raise ValueError(f"Unknown task {task!r}; choose 'preference' or 'critique'.")
    options = dict(options)
    api_key = options.pop("api_key", None) or options.pop("openai_api_key", None)
    allowed = {"model", "max_new_tokens", "temperature", "num_threads", "base_url"}
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise TypeError(f"`pipeline` does not take {unknown}; it takes {sorted(allowed)}.")
    return OpenAILLM(
        labelling_task,
        model=options.pop("model", "gpt-3.5-turbo"),
        api_key=api_key,
        max_new_tokens=options.pop("max_new_tokens", 256),
        temperature=options.pop("temperature", 0.0),
        **options,
    )
