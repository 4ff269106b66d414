"""Batch rewrite of prompt datasets (JSONL, CSV, Parquet): resumable, lossless, in scorer batches."""

from .job import (
    InputFile,
    JobError,
    JobResult,
    JobSpec,
    Progress,
    Rewriter,
    RowInput,
    RowOutput,
    inspect_input,
    run_job,
)

__all__ = [
    "InputFile",
    "JobError",
    "JobResult",
    "JobSpec",
    "Progress",
    "Rewriter",
    "RowInput",
    "RowOutput",
    "inspect_input",
    "run_job",
]
