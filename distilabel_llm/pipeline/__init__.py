"""Batch jobs: generate and label whole datasets, with progress, checkpoints and resume."""

from distilabel_llm.pipeline.checkpoint import Checkpoint, CheckpointError
from distilabel_llm.pipeline.dataset import DatasetError, load_rows, read_jsonl
from distilabel_llm.pipeline.job import JobInterrupted, PipelineError
from distilabel_llm.pipeline.legacy import pipeline
from distilabel_llm.pipeline.pipeline import Pipeline
from distilabel_llm.pipeline.stats import JobStats

__all__ = [
    "Checkpoint",
    "CheckpointError",
    "DatasetError",
    "JobInterrupted",
    "JobStats",
    "Pipeline",
    "PipelineError",
    "load_rows",
    "pipeline",
    "read_jsonl",
]
