"""Preference tasks: rate or rank a row's generations."""

from distilabel_llm.tasks.preference.base import PreferenceTask, PreferenceTaskNoRationale
from distilabel_llm.tasks.preference.complexity_scorer import ComplexityScorerTask
from distilabel_llm.tasks.preference.judgelm import JudgeLMTask
from distilabel_llm.tasks.preference.quality_scorer import QualityScorerTask
from distilabel_llm.tasks.preference.ultrafeedback import UltraFeedbackTask
from distilabel_llm.tasks.preference.ultrajudge import UltraJudgeTask

__all__ = [
    "ComplexityScorerTask",
    "JudgeLMTask",
    "PreferenceTask",
    "PreferenceTaskNoRationale",
    "QualityScorerTask",
    "UltraFeedbackTask",
    "UltraJudgeTask",
]
