"""Generation tasks: answers, instructions, evolved instructions and responses."""

from distilabel_llm.tasks.text_generation.base import TextGenerationTask
from distilabel_llm.tasks.text_generation.evol_complexity import EvolComplexityTask
from distilabel_llm.tasks.text_generation.evol_instruct import EvolInstructTask
from distilabel_llm.tasks.text_generation.evol_quality import EvolQualityTask
from distilabel_llm.tasks.text_generation.principles import PRINCIPLES
from distilabel_llm.tasks.text_generation.self_instruct import SelfInstructTask

__all__ = [
    "PRINCIPLES",
    "EvolComplexityTask",
    "EvolInstructTask",
    "EvolQualityTask",
    "SelfInstructTask",
    "TextGenerationTask",
]
