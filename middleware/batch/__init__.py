"""Batch rewrite of prompt datasets (JSONL, CSV, Parquet): resumable, lossless, in scorer batches."""

from .job import JobError, JobResult, JobSpec, Progress, Rewriter, RowInput, RowOutput, run_job

__all__ = ["JobError", "JobResult", "JobSpec", "Progress", "Rewriter", "RowInput", "RowOutput", "run_job"]
