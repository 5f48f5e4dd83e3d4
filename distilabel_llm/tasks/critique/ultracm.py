"""UltraCM-style critique: a demanding reviewer's feedback and an overall score per answer."""

from __future__ import annotations

from dataclasses import dataclass

from distilabel_llm.tasks.critique.base import CritiqueTask

__all__ = ["UltraCMTask"]

_DEFAULT_SYSTEM_PROMPT = (
    "You are a demanding but fair critic of AI assistants. You judge how helpful, honest and "
    "accurate each answer is and how well it follows the request, and your feedback is "
    "concrete enough for its author to act on."
)


@dataclass
class UltraCMTask(CritiqueTask):
    """The critique task with the reviewing stance of UltraCM (the critique model trained on
    UltraFeedback): feedback on helpfulness, honesty, accuracy and instruction following,
    then an overall score from 1 to 10 per generation. Outputs `critique` and `score`."""

    system_prompt: str = _DEFAULT_SYSTEM_PROMPT
