"""A resumable, lossless rewrite of a prompt dataset: read rows, rewrite them in batches, append them.

Every input row appears in the output exactly once, in input order, with its original columns plus
`promptfold_*` columns, under one schema decided from the whole input before the first row (schema.py).
A row that cannot be rewritten (no prompt, wrong type), that the rewriter fails on, or that the output
cannot hold is written with its error and counted, and never stops the run. Killed at any point, the same
command resumes; a row that crashes the process itself is found and written with its error (checkpoint.py).
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

from . import schema as output_schema
from .checkpoint import Checkpoint, job_hash
from .encoding import EncodingError, check_encoding, detect_encoding
from .formats import (
    CsvWriter,
    Format,
    FormatError,
    JsonlWriter,
    ParquetPartsWriter,
    RowWriter,
    UnwritableRows,
    format_of,
    parquet_rows,
    parquet_schema,
    read_rows,
)
from .rows import Rewriter, RowInput, RowOutput, row_input
from .schema import ADDED_COLUMNS, OutputSchema

__all__ = [
    "ADDED_COLUMNS",
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

CRASHED = (
    "the process died while rewriting this row alone, after an earlier run had died over its batch; "
    "written without a rewrite so that the job can finish"
)


class JobError(Exception):
    """A problem with the job as asked (paths, fields, encoding, a checkpoint of another job); one sentence."""


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
    encoding: str | None = None  # of a JSONL/CSV input; None: detected (encoding.py)

    def input_of(self, row: dict[str, Any]) -> RowInput | str:
        """The rewrite input of `row`, or the reason it has none."""
        return row_input(
            row, field=self.field, messages_field=self.messages_field, question_field=self.question_field
        )

    def options(self, rewriter: Rewriter, source: InputFile) -> dict[str, Any]:
        return {
            "field": self.field,
            "messages_field": self.messages_field,
            "question_field": self.question_field,
            "output_format": format_of(self.output),
            "rewriter": rewriter.describe(),
            "encoding": source.encoding,
            "schema": source.schema.fingerprint(),
        }


@dataclass(frozen=True)
class InputFile:
    """What a job learns from its input before writing anything."""

    format: Format
    encoding: str | None  # the codec JSONL/CSV is read with; None for Parquet
    schema: OutputSchema


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
    encoding: str | None = None


def inspect_input(spec: JobSpec) -> InputFile:
    """Format, encoding and output schema of `spec.input` (a JSONL/CSV input is read once, whole);
    raises JobError with a one-line reason (unknown format, undecodable text, bad JSON or CSV)."""
    if not spec.input.is_file():
        raise JobError(f"input file '{spec.input}' does not exist")
    messages = spec.messages_field is not None
    try:
        fmt = format_of(spec.input)
        format_of(spec.output)
        if fmt == "parquet":
            return _inspect_parquet(spec.input, messages)
        encoding = check_encoding(spec.encoding) if spec.encoding else detect_encoding(spec.input)
        rows = read_rows(spec.input, encoding=encoding)
        return InputFile(fmt, encoding, output_schema.from_rows(rows, messages=messages))
    except (FormatError, EncodingError) as error:
        raise JobError(str(error)) from error


def _inspect_parquet(path: Path, messages: bool) -> InputFile:
    try:
        schema = output_schema.from_arrow(parquet_schema(path), parquet_rows(path), messages=messages)
    except (OSError, ValueError) as error:  # pyarrow's ArrowInvalid is a ValueError
        raise JobError(f"'{path}' cannot be read as Parquet ({error})") from error
    return InputFile("parquet", None, schema)


def run_job(
    spec: JobSpec, rewriter: Rewriter, progress: Progress | None = None, source: InputFile | None = None
) -> JobResult:
    """Run (or resume) the job; `source` is `inspect_input(spec)` when the caller already has it.
    Raises JobError for a problem with the job as asked; a bad row never raises."""
    progress = progress or Progress()
    source = source or inspect_input(spec)
    checkpoint = _start(spec, rewriter, source)
    resumed_from = checkpoint.rows_done
    writer = _writer(spec, source, checkpoint)
    progress.start(source.schema.rows, checkpoint.rows_done)
    run = _Run(spec, rewriter, writer, checkpoint, progress)
    try:
        rows = read_rows(spec.input, checkpoint.rows_done, source.encoding)
        run.recover(rows)
        run.pipelined(rows)
        if isinstance(writer, ParquetPartsWriter):
            writer.finish(spec.output)
    finally:
        writer.close()
    checkpoint.complete = True
    checkpoint.save(spec.output)
    wall_s = time.perf_counter() - run.started
    return JobResult(
        checkpoint, source.schema.rows, resumed_from, wall_s, _ratios(spec.output), source.encoding
    )


class _Run:
    """One run of a job: rewrites the rows after the checkpoint, appends each batch, then checkpoints it."""

    def __init__(
        self, spec: JobSpec, rewriter: Rewriter, writer: RowWriter, checkpoint: Checkpoint, progress: Progress
    ) -> None:
        self.spec, self.rewriter, self.writer, self.progress = spec, rewriter, writer, progress
        self.checkpoint = checkpoint
        self.started = time.perf_counter()
        self.seconds_before = checkpoint.seconds  # work time of earlier runs of this job

    def recover(self, rows: Iterator[dict[str, Any]]) -> None:
        """First the rows an earlier run died over (see checkpoint.py): the one it died on alone is written
        with its error; a batch it died on is rewritten one row at a time, so that a crash names its row."""
        point = self.checkpoint
        guilty = point.isolating and point.in_flight > 0
        suspects = 0 if guilty else point.in_flight
        point.in_flight, point.isolating = 0, False
        if guilty and (culprit := list(islice(rows, 1))):
            self.commit(culprit, [RowOutput.failed(CRASHED)])
        for row in islice(rows, suspects):
            point.in_flight, point.isolating = 1, True
            point.save(self.spec.output)
            self.commit([row], _rewrite_rows(self.spec, self.rewriter, [row]))
        point.isolating = False

    def pipelined(self, rows: Iterator[dict[str, Any]]) -> None:
        """The remaining rows in batches; up to `workers` batches are rewritten at once, committed in order."""
        workers, size = max(self.spec.workers, 1), max(self.spec.batch_size, 1)
        with ThreadPoolExecutor(max_workers=workers) as pool:
            pending: deque[tuple[list[dict[str, Any]], Future[list[RowOutput]]]] = deque()
            while True:
                while len(pending) < workers and (batch := list(islice(rows, size))):
                    self.checkpoint.in_flight += len(batch)
                    self.checkpoint.save(self.spec.output)  # before the rewrite starts: see recover()
                    pending.append((batch, pool.submit(_rewrite_rows, self.spec, self.rewriter, batch)))
                if not pending:
                    return
                batch, future = pending.popleft()
                self.commit(batch, future.result())

    def commit(self, rows: list[dict[str, Any]], outputs: list[RowOutput]) -> None:
        point = self.checkpoint
        records = [
            _record(row, point.rows_done + i, out)
            for i, (row, out) in enumerate(zip(rows, outputs, strict=True))
        ]
        records, encoded = self._encode(records)
        point.position = self.writer.write(encoded)
        saved = _count(point, records)
        point.rows_done += len(records)
        point.in_flight = max(point.in_flight - len(records), 0)
        point.seconds = self.seconds_before + time.perf_counter() - self.started
        point.save(self.spec.output)  # only after the rows are durable: see checkpoint.py
        self.progress.advance(len(records), saved)

    def _encode(self, records: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], Any]:
        """The records and their encoding; a record the output cannot hold is replaced by one that says
        why and keeps its values as JSON text in promptfold_error (lossless, and the batch still goes in)."""
        try:
            return records, self.writer.encode(records)
        except UnwritableRows:
            kept = [self._storable(record) for record in records]
            return kept, self.writer.encode(kept)

    def _storable(self, record: dict[str, Any]) -> dict[str, Any]:
        try:
            self.writer.encode([record])
            return record
        except UnwritableRows as error:
            values = {k: v for k, v in record.items() if k not in ("promptfold_row", "promptfold_error")}
            kept = json.dumps(values, ensure_ascii=False, default=str)
            reason = f"the output cannot hold this row's values ({error}); they are kept here as JSON: {kept}"
            return {"promptfold_row": record["promptfold_row"], "promptfold_error": reason}


def _start(spec: JobSpec, rewriter: Rewriter, source: InputFile) -> Checkpoint:
    identity = job_hash(spec.input, spec.options(rewriter, source))
    existing = Checkpoint.load(spec.output)
    if existing is not None and not spec.overwrite:
        if existing.job != identity:
            raise JobError(
                f"'{spec.output}' belongs to a job with another input or other options "
                "(or one started by an older promptfold); rerun the same command to resume it, "
                "or pass --overwrite to start over"
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


def _writer(spec: JobSpec, source: InputFile, checkpoint: Checkpoint) -> RowWriter:
    out_format = format_of(spec.output)
    if out_format == "jsonl":
        return JsonlWriter(spec.output, checkpoint.position)
    if out_format == "csv":
        return CsvWriter(spec.output, checkpoint.position, source.schema)
    return ParquetPartsWriter(_parts_dir(spec.output), checkpoint.position, source.schema)


def _rewrite_rows(spec: JobSpec, rewriter: Rewriter, rows: list[dict[str, Any]]) -> list[RowOutput]:
    inputs = [spec.input_of(row) for row in rows]
    valid = [i for i, item in enumerate(inputs) if isinstance(item, RowInput)]
    outputs = [RowOutput.failed(item) if isinstance(item, str) else RowOutput() for item in inputs]
    rewritten = _rewrite(rewriter, [item for item in inputs if isinstance(item, RowInput)])
    for i, output in zip(valid, rewritten, strict=True):
        outputs[i] = output
    return outputs


def _rewrite(rewriter: Rewriter, inputs: list[RowInput]) -> list[RowOutput]:
    """One output per input; when the rewriter fails a whole batch, each row is retried alone, so that
    only the rows it fails on carry the error."""
    if not inputs:
        return []
    try:
        outputs = rewriter.rewrite(inputs)
        if len(outputs) != len(inputs):
            raise ValueError(f"the rewriter gave {len(outputs)} outputs for {len(inputs)} rows")
        return outputs
    except Exception as error:
        if len(inputs) == 1:
            return [RowOutput.failed(f"{type(error).__name__}: {error}")]
        return [output for one in inputs for output in _rewrite(rewriter, [one])]


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


def _count(checkpoint: Checkpoint, records: list[dict[str, Any]]) -> int:
    """Count the written records into the checkpoint; returns the tokens they saved."""
    saved = 0
    for record in records:
        error = record.get("promptfold_error")
        if error is None:
            checkpoint.ok += 1
            tokens_in = record.get("promptfold_original_tokens") or 0
            tokens_out = record.get("promptfold_tokens") or 0
            checkpoint.tokens_in += tokens_in
            checkpoint.tokens_out += tokens_out
            saved += tokens_in - tokens_out
        else:
            checkpoint.failed += 1
            checkpoint.count_error(error)
    return saved


def _ratios(output: Path) -> list[float]:
    """Achieved ratios of all rows, read back from the output (so a resumed job counts every run)."""
    return [
        float(r["promptfold_ratio"])
        for r in read_rows(output, encoding="utf-8")
        if r.get("promptfold_ratio") not in (None, "")
    ]
