"""Tasks: how rows become prompts and model text becomes fields."""

from distilabel_llm.tasks.base import Task
from distilabel_llm.tasks.judgelm import JudgeLMTask
from distilabel_llm.tasks.prompt import ChatMessages, Prompt, SupportedFormats
from distilabel_llm.tasks.self_instruct import SelfInstructTask
from distilabel_llm.tasks.text_generation import TextGenerationTask
from distilabel_llm.tasks.ultrafeedback import UltraFeedbackTask

__all__ = [
    "ChatMessages",
    "JudgeLMTask",
    "Prompt",
    "SelfInstructTask",
    "SupportedFormats",
    "Task",
    "TextGenerationTask",
    "UltraFeedbackTask",
]
