"""Critique tasks: written feedback on each generation, with a score."""

from distilabel_llm.tasks.critique.base import CritiqueTask
from distilabel_llm.tasks.critique.prometheus import PrometheusTask
from distilabel_llm.tasks.critique.ultracm import UltraCMTask

__all__ = ["CritiqueTask", "PrometheusTask", "UltraCMTask"]
