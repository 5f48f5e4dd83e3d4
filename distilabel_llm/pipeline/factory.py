"""Legacy distilabel's `pipeline(...)` factory: a `Pipeline` whose labeller rates generations."""

from __future__ import annotations

from typing import Any, Dict, Literal, Optional

from distilabel_llm.pipeline.core import Pipeline
from distilabel_llm.tasks import UltraCMTask, UltraFeedbackTask

__all__ = ["pipeline"]

# Legacy's `pipeline("preference", subtask)` names, and our UltraFeedback constructors.
_PREFERENCE_SUBTASKS = {
    "text-quality": "for_overall_quality",
    "helpfulness": "for_helpfulness",
    "truthfulness": "for_truthfulness",
    "honesty": "for_honesty",
    "instruction-following": "for_instruction_following",
}


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
    if labeller is None:
        labeller = _default_labeller(task, subtask, kwargs)
    elif kwargs:
        raise TypeError(
            f"{sorted(kwargs)} configure the labeller `pipeline` builds, but a `labeller` was "
            "given: set them on it."
        )
    return Pipeline(generator=generator, labeller=labeller)


def _default_labeller(task: str, subtask: Optional[str], options: Dict[str, Any]) -> Any:
    from distilabel_llm.llm.backends.openai import OpenAILLM  # the openai extra, only if used

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
