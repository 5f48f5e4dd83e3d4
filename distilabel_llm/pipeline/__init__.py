"""Batch jobs: generate and label whole datasets, with progress, checkpoints and resume."""

from distilabel_llm.pipeline.checkpoint import Checkpoint, CheckpointError
from distilabel_llm.pipeline.dataset import DatasetError, load_rows, read_jsonl
from distilabel_llm.pipeline.job import JobInterrupted, PipelineError
from distilabel_llm.pipeline.legacy import pipeline as _legacy_pipeline
from distilabel_llm.pipeline.pipeline import Pipeline
from distilabel_llm.pipeline.stats import JobStats

# Importing the `pipeline` module above set this package's `pipeline` attribute to the module:
# legacy's `pipeline(...)` factory takes the name back.
pipeline = _legacy_pipeline

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
