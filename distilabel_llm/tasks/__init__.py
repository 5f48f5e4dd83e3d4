"""Tasks: how rows become prompts and model text becomes fields.

Laid out as legacy distilabel's were (`tasks.text_generation`, `tasks.preference`,
`tasks.critique`), and all importable from here.
"""

from distilabel_llm.tasks.base import PromptTemplate, Task
from distilabel_llm.tasks.critique import CritiqueTask, PrometheusTask, UltraCMTask
from distilabel_llm.tasks.preference import (
    ComplexityScorerTask,
    JudgeLMTask,
    QualityScorerTask,
    UltraFeedbackTask,
    UltraJudgeTask,
)
from distilabel_llm.tasks.prompt import ChatMessages, Prompt, SupportedFormats
from distilabel_llm.tasks.text_generation import (
    EvolComplexityTask,
    EvolInstructTask,
    EvolQualityTask,
    SelfInstructTask,
    TextGenerationTask,
)

__all__ = [
    "ChatMessages",
    "ComplexityScorerTask",
    "CritiqueTask",
    "EvolComplexityTask",
    "EvolInstructTask",
    "EvolQualityTask",
    "JudgeLMTask",
    "PrometheusTask",
    "Prompt",
    "PromptTemplate",
    "QualityScorerTask",
    "SelfInstructTask",
    "SupportedFormats",
    "Task",
    "TextGenerationTask",
    "UltraCMTask",
    "UltraFeedbackTask",
    "UltraJudgeTask",
]
