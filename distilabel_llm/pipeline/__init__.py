"""Batch jobs: generate and label whole datasets, with progress, checkpoints and resume."""

from distilabel_llm.errors import (
    CheckpointError,
    DatasetError,
    JobInterrupted,
    PipelineArgumentError,
    PipelineError,
)
from distilabel_llm.pipeline.checkpoint import Checkpoint
from distilabel_llm.pipeline.core import Pipeline
from distilabel_llm.pipeline.dataset import load_rows, read_jsonl
from distilabel_llm.pipeline.factory import pipeline
from distilabel_llm.pipeline.stats import JobStats

__all__ = [
    "Checkpoint",
    "CheckpointError",
    "DatasetError",
    "JobInterrupted",
    "JobStats",
    "Pipeline",
    "PipelineArgumentError",
    "PipelineError",
    "load_rows",
    "pipeline",
    "read_jsonl",
]
