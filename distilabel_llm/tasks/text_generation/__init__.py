"""Generation tasks: answers, instructions, evolved instructions."""

from distilabel_llm.tasks.text_generation.base import TextGenerationTask
from distilabel_llm.tasks.text_generation.evol_instruct import EvolInstructTask
from distilabel_llm.tasks.text_generation.principles import PRINCIPLES
from distilabel_llm.tasks.text_generation.self_instruct import SelfInstructTask

__all__ = ["PRINCIPLES", "EvolInstructTask", "SelfInstructTask", "TextGenerationTask"]
