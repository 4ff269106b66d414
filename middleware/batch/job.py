"""A resumable, lossless rewrite of a prompt dataset: read rows, rewrite them in batches, append them.

Every input row appears in the output exactly once, in input order, with its original columns plus
`promptfold_*` columns; a row that cannot be rewritten (empty prompt, wrong type) is written with its
error and counted, and never stops the run. Killed at any point, the same command resumes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any, Protocol

from .checkpoint import Checkpoint, job_hash
from .formats import (
    CsvWriter,
    FormatError,
    JsonlWriter,
    ParquetPartsWriter,
    RowWriter,
    count_rows,
    format_of,
    parquet_schema,
    read_rows,
)

ADDED_COLUMNS = (
    "promptfold_row",
    "promptfold_prompt",
    "promptfold_original_tokens",
    "promptfold_tokens",
    "promptfold_ratio",
    "promptfold_error",
)


@dataclass
class RowInput:
    """What one row asks to rewrite: a prompt text or chat messages, and an optional question."""

    text: str | None = None
    messages: list[dict[str, Any]] | None = None
    question: str | None = None


@dataclass
class RowOutput:
    rewritten: str | list[dict[str, Any]] | None = None
    original_tokens: int | None = None
    tokens: int | None = None
    error: str | None = None

    @classmethod
    def failed(cls, error: str) -> RowOutput:
        return cls(error=error)


class Rewriter(Protocol):
    """Rewrites a batch of rows at once (the scorer sees them together); one output per input, in order."""

    def rewrite(self, rows: list[RowInput]) -> list[RowOutput]: ...

    def describe(self) -> dict[str, Any]:
        """The options that shape the output (part of the job's identity for resuming)."""
        ...


class JobError(Exception):
    """A problem with the job as asked (paths, fields, a checkpoint of another job); one sentence."""


@dataclass
class JobSpec:
    input: Path
    output: Path
    field: str | None = "prompt"
    messages_field: str | None = None
    question_field: str | None = None
    batch_size: int = 16
    workers: int = 1
    overwrite: bool = False

    def options(self, rewriter: Rewriter) -> dict[str, Any]:
        return {
            "field": self.field,
            "messages_field": self.messages_field,
            "question_field": self.question_field,
            "output_format": format_of(self.output),
            "rewriter": rewriter.describe(),
        }


@dataclass
class Progress:
    """Callbacks for a progress display; the default does nothing."""

    start: Callable[[int, int], None] = lambda total, done: None
    advance: Callable[[int, int], None] = lambda rows, tokens_saved: None


@dataclass
class JobResult:
    checkpoint: Checkpoint
    total_rows: int
    resumed_from: int
    wall_s: float
    ratios: list[float] = field(default_factory=list)


def row_input(row: dict[str, Any], spec: JobSpec) -> RowInput | str:
    """The rewrite input of a row, or the reason it has none."""
    question = row.get(spec.question_field) if spec.question_field else None
    if question is not None and not isinstance(question, str):
        return f"'{spec.question_field}' must be text, got {type(question).__name__}"
    if spec.messages_field:
        messages = row.get(spec.messages_field)
        if isinstance(messages, str):  # CSV cells hold JSON text
            import json

            try:
                messages = json.loads(messages)
            except ValueError:
                return f"'{spec.messages_field}' is not a JSON list of messages"
        if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
            return f"'{spec.messages_field}' must be a non-empty list of messages"
        return RowInput(messages=messages, question=question)
    assert spec.field is not None
    if spec.field not in row:
        return f"the row has no field '{spec.field}'"
    text = row[spec.field]
    if not isinstance(text, str):
        return f"'{spec.field}' must be text, got {type(text).__name__}"
    if not text.strip():
        return f"'{spec.field}' is empty"
    return RowInput(text=text, question=question)


def run_job(spec: JobSpec, rewriter: Rewriter, progress: Progress | None = None) -> JobResult:
    progress = progress or Progress()
    if not spec.input.is_file():
        raise JobError(f"input file '{spec.input}' does not exist")
    try:
        in_format, out_format = format_of(spec.input), format_of(spec.output)
        total = count_rows(spec.input)
    except FormatError as error:
        raise JobError(str(error)) from error
    checkpoint = _start(spec, rewriter)
    resumed_from = checkpoint.rows_done
    writer = _writer(spec, in_format, out_format, checkpoint)
    progress.start(total, checkpoint.rows_done)
    started = time.perf_counter()
    seconds_before = checkpoint.seconds  # work time of earlier runs of this job
    try:
        for rows, outputs in _rewritten_batches(spec, rewriter, checkpoint.rows_done):
            first = checkpoint.rows_done
            records = [
                _record(row, first + i, out) for i, (row, out) in enumerate(zip(rows, outputs, strict=True))
            ]
            checkpoint.position = writer.append(records)
            _count(checkpoint, outputs)
            checkpoint.rows_done += len(rows)
            checkpoint.seconds = seconds_before + time.perf_counter() - started
            checkpoint.save(spec.output)  # only after the rows are durable: see checkpoint.py
            saved = sum((o.original_tokens or 0) - (o.tokens or 0) for o in outputs if o.error is None)
            progress.advance(len(rows), saved)
        if isinstance(writer, ParquetPartsWriter):
            writer.finish(spec.output)
    finally:
        writer.close()
    checkpoint.complete = True
    checkpoint.save(spec.output)
    return JobResult(checkpoint, total, resumed_from, time.perf_counter() - started, _ratios(spec.output))


def _start(spec: JobSpec, rewriter: Rewriter) -> Checkpoint:
    identity = job_hash(spec.input, spec.options(rewriter))
    existing = Checkpoint.load(spec.output)
    if existing is not None and not spec.overwrite:
        if existing.job != identity:
            raise JobError(
                f"'{spec.output}' belongs to a job with another input or other options; "
                "rerun the same command to resume it, or pass --overwrite to start over"
            )
        existing.runs += 1
        return existing
    if spec.output.exists() and existing is None and not spec.overwrite:
        raise JobError(
            f"'{spec.output}' exists and was not written by a promptfold batch job; pass --overwrite"
        )
    for stale in (spec.output, _parts_dir(spec.output)):
        if stale.is_dir():
            import shutil

            shutil.rmtree(stale)
        elif stale.exists():
            stale.unlink()
    fresh = Checkpoint(job=identity)
    fresh.save(spec.output)
    return fresh


def _parts_dir(output: Path) -> Path:
    return output.with_name(output.name + ".parts")


def _writer(spec: JobSpec, in_format: str, out_format: str, checkpoint: Checkpoint) -> RowWriter:
    if out_format == "jsonl":
        return JsonlWriter(spec.output, checkpoint.position)
    columns = _input_columns(spec) + list(ADDED_COLUMNS)
    if out_format == "csv":
        return CsvWriter(spec.output, checkpoint.position, columns)
    return ParquetPartsWriter(_parts_dir(spec.output), checkpoint.position, _output_schema(spec, in_format))


def _input_columns(spec: JobSpec) -> list[str]:
    first = next(read_rows(spec.input), {})
    return [c for c in first if c not in ADDED_COLUMNS]


def _output_schema(spec: JobSpec, in_format: str) -> Any:
    import pyarrow as pa

    if in_format == "parquet":
        base = list(parquet_schema(spec.input))
    else:  # infer the input columns' types from a sample of rows
        sample = list(islice(read_rows(spec.input), 256))
        base = list(pa.Table.from_pylist(sample).schema) if sample else []
    prompt_type = pa.string() if spec.messages_field is None else pa.list_(pa.map_(pa.string(), pa.string()))
    added = [
        pa.field("promptfold_row", pa.int64()),
        pa.field("promptfold_prompt", prompt_type),
        pa.field("promptfold_original_tokens", pa.int64()),
        pa.field("promptfold_tokens", pa.int64()),
        pa.field("promptfold_ratio", pa.float64()),
        pa.field("promptfold_error", pa.string()),
    ]
    return pa.schema([f for f in base if f.name not in ADDED_COLUMNS] + added)


def _rewritten_batches(
    spec: JobSpec, rewriter: Rewriter, skip: int
) -> Iterator[tuple[list[dict[str, Any]], list[RowOutput]]]:
    """Batches of (rows, outputs) in input order; up to `workers` batches are rewritten at once."""
    rows = read_rows(spec.input, skip)
    with ThreadPoolExecutor(max_workers=max(spec.workers, 1)) as pool:
        pending: list[tuple[list[dict[str, Any]], Future[list[RowOutput]]]] = []
        while True:
            while len(pending) < max(spec.workers, 1):
                batch = list(islice(rows, spec.batch_size))
                if not batch:
                    break
                pending.append((batch, pool.submit(_rewrite_batch, spec, rewriter, batch)))
            if not pending:
                return
            batch, future = pending.pop(0)
            yield batch, future.result()


def _rewrite_batch(spec: JobSpec, rewriter: Rewriter, rows: list[dict[str, Any]]) -> list[RowOutput]:
    inputs = [row_input(row, spec) for row in rows]
    valid = [i for i, item in enumerate(inputs) if isinstance(item, RowInput)]
    outputs: list[RowOutput] = [RowOutput.failed(str(item)) for item in inputs]
    if valid:
        try:
            rewritten = rewriter.rewrite([inputs[i] for i in valid])  # type: ignore[misc]
        except Exception as error:  # a batch-wide failure marks its rows, it does not stop the job
            rewritten = [RowOutput.failed(f"{type(error).__name__}: {error}")] * len(valid)
        for i, output in zip(valid, rewritten, strict=True):
            outputs[i] = output
    return outputs


def _record(row: dict[str, Any], number: int, output: RowOutput) -> dict[str, Any]:
    ratio = None
    if output.error is None and output.original_tokens and output.tokens is not None:
        ratio = round(output.tokens / output.original_tokens, 4)
    return {
        **row,
        "promptfold_row": number,
        "promptfold_prompt": output.rewritten,
        "promptfold_original_tokens": output.original_tokens,
        "promptfold_tokens": output.tokens,
        "promptfold_ratio": ratio,
        "promptfold_error": output.error,
    }


def _count(checkpoint: Checkpoint, outputs: list[RowOutput]) -> None:
    for output in outputs:
        if output.error is None:
            checkpoint.ok += 1
            checkpoint.tokens_in += output.original_tokens or 0
            checkpoint.tokens_out += output.tokens or 0
        else:
            checkpoint.failed += 1


def _ratios(output: Path) -> list[float]:
    """Achieved ratios of all rows, read back from the output (so a resumed job counts every run)."""
    return [
        float(r["promptfold_ratio"]) for r in read_rows(output) if r.get("promptfold_ratio") not in (None, "")
    ]
