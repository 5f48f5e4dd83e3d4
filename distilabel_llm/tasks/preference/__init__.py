"""Preference tasks: rate or rank a row's generations."""

from distilabel_llm.tasks.preference.judgelm import JudgeLMTask
from distilabel_llm.tasks.preference.scorers import ComplexityScorerTask, QualityScorerTask
from distilabel_llm.tasks.preference.ultrafeedback import UltraFeedbackTask
from distilabel_llm.tasks.preference.ultrajudge import UltraJudgeTask

__all__ = [
    "ComplexityScorerTask",
    "JudgeLMTask",
    "QualityScorerTask",
    "UltraFeedbackTask",
    "UltraJudgeTask",
]
