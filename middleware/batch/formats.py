"""Reading rows from and appending rows to JSONL, CSV and Parquet files.

Readers yield plain dicts in file order. Writers only ever append, in two steps: `encode` turns rows into
the output's form and writes nothing (so a row the output cannot hold is found before any byte is
written), then `write` appends durably and reports the durable size (bytes for JSONL/CSV, parts for
Parquet) so that a checkpoint can name a point to roll back to. Output text is always UTF-8.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal, Protocol

from backend.errors import InvalidRequest

from .encoding import detect_encoding, undecodable
from .schema import OutputSchema, is_json_text

Format = Literal["jsonl", "csv", "parquet"]
SUFFIXES: dict[str, Format] = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".parquet": "parquet"}
EXTRA_CELLS = "_extra_cells"  # a CSV row's cells beyond its header, kept as a list rather than dropped
csv.field_size_limit(2**31 - 1)  # a prompt (a long context) may exceed csv's default 128 KiB per cell


class FormatError(InvalidRequest):
    """A file whose format is unknown or whose content does not parse; the message names the place."""


class UnwritableRows(ValueError):
    """Rows holding a value the output cannot store (with its types); nothing was written."""


def format_of(path: Path) -> Format:
    fmt = SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise FormatError(f"'{path}': unknown format; use .jsonl, .csv or .parquet")
    return fmt


def read_rows(path: Path, skip: int = 0, encoding: str | None = None) -> Iterator[dict[str, Any]]:
    """Rows of `path` from row number `skip` on. JSONL and CSV are decoded with `encoding` (detected when
    None, see encoding.py); a file that stops decoding raises EncodingError, bad JSON or CSV FormatError."""
    fmt = format_of(path)
    if fmt == "parquet":
        yield from _read_parquet(path, skip)
        return
    encoding = encoding or detect_encoding(path)
    try:
        yield from (_read_jsonl if fmt == "jsonl" else _read_csv)(path, skip, encoding)
    except UnicodeDecodeError as error:
        raise undecodable(path, encoding, error) from error


def _read_jsonl(path: Path, skip: int, encoding: str) -> Iterator[dict[str, Any]]:
    with path.open(encoding=encoding) as handle:
        number = 0
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            if number >= skip:
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as error:
                    raise FormatError(
                        f"'{path}' line {line_number} is not JSON ({error.msg}); fix or remove the line"
                    ) from error
                yield row if isinstance(row, dict) else {"value": row}
            number += 1


def _read_csv(path: Path, skip: int, encoding: str) -> Iterator[dict[str, Any]]:
    with path.open(newline="", encoding=encoding) as handle:
        reader = csv.DictReader(handle, restkey=EXTRA_CELLS)
        try:
            for number, row in enumerate(reader):
                if number >= skip:
                    yield row
        except csv.Error as error:
            raise FormatError(f"'{path}' line {reader.line_num} is not CSV ({error})") from error


def _read_parquet(path: Path, skip: int) -> Iterator[dict[str, Any]]:
    import pyarrow.parquet as pq

    source = pq.ParquetFile(path)
    json_columns = [f.name for f in source.schema_arrow if is_json_text(f)]  # written by us: decode back
    seen = 0
    for batch in source.iter_batches(batch_size=1024):
        rows = batch.to_pylist()
        if seen + len(rows) > skip:
            for row in rows[max(skip - seen, 0) :]:
                for name in json_columns:
                    if row[name] is not None:
                        row[name] = json.loads(row[name])
                yield row
        seen += len(rows)


def parquet_schema(path: Path) -> Any:
    import pyarrow.parquet as pq

    return pq.ParquetFile(path).schema_arrow


def parquet_rows(path: Path) -> int:
    import pyarrow.parquet as pq

    return int(pq.ParquetFile(path).metadata.num_rows)


class RowWriter(Protocol):
    def encode(self, rows: list[dict[str, Any]]) -> Any:
        """The rows in the output's form, for `write`; raises UnwritableRows and writes nothing."""
        ...

    def write(self, encoded: Any) -> int:
        """Append encoded rows durably (flushed and fsynced); return the new durable position."""
        ...

    def close(self) -> None: ...


class JsonlWriter:
    def __init__(self, path: Path, position: int) -> None:
        self.handle = _open_at(path, position)

    def encode(self, rows: list[dict[str, Any]]) -> bytes:
        try:
            text = "".join(json.dumps(row, ensure_ascii=False, default=str) + "\n" for row in rows)
        except (TypeError, ValueError) as error:
            raise UnwritableRows(str(error)) from error
        return text.encode("utf-8")

    def write(self, encoded: bytes) -> int:
        return _write_durably(self.handle, encoded)

    def close(self) -> None:
        self.handle.close()


class CsvWriter:
    """CSV with the header of `schema` (every column of the whole input, see schema.py); lists and dicts
    are written as JSON text, None as an empty cell."""

    def __init__(self, path: Path, position: int, schema: OutputSchema) -> None:
        self.handle = _open_at(path, position)
        self.columns = schema.columns
        if position == 0:
            _write_durably(self.handle, self.encode([dict(zip(self.columns, self.columns, strict=True))]))

    def encode(self, rows: list[dict[str, Any]]) -> bytes:
        buffer = io.StringIO()
        # extrasaction="raise": a column missing from the header is a bug to hear about, never a silent drop
        writer = csv.DictWriter(buffer, fieldnames=self.columns, extrasaction="raise", lineterminator="\n")
        try:
            for row in rows:
                writer.writerow({k: _csv_cell(v) for k, v in row.items()})
        except (TypeError, ValueError, csv.Error) as error:
            raise UnwritableRows(str(error)) from error
        return buffer.getvalue().encode("utf-8")

    def write(self, encoded: bytes) -> int:
        return _write_durably(self.handle, encoded)

    def close(self) -> None:
        self.handle.close()


def _csv_cell(value: Any) -> Any:
    return json.dumps(value, ensure_ascii=False, default=str) if isinstance(value, list | dict) else value


class ParquetPartsWriter:
    """Parquet cannot be appended to: each batch becomes one part file with `schema`; `finish` joins them."""

    def __init__(self, parts_dir: Path, parts_done: int, schema: OutputSchema) -> None:
        self.parts_dir = parts_dir
        self.schema = schema.arrow
        self.json_columns = schema.json_columns
        parts_dir.mkdir(parents=True, exist_ok=True)
        for stale in sorted(parts_dir.glob("part-*.parquet"))[parts_done:]:
            stale.unlink()  # written after the last checkpoint: they will be written again
        self.parts = parts_done

    def encode(self, rows: list[dict[str, Any]]) -> Any:
        import pyarrow as pa

        if self.json_columns:
            rows = [{k: _json_text(v) if k in self.json_columns else v for k, v in r.items()} for r in rows]
        try:
            return pa.Table.from_pylist(rows, schema=self.schema)
        except (pa.ArrowException, TypeError, ValueError, OverflowError) as error:
            raise UnwritableRows(str(error)) from error

    def write(self, encoded: Any) -> int:
        import pyarrow.parquet as pq

        self.parts += 1
        final = self.parts_dir / f"part-{self.parts:06d}.parquet"
        temporary = final.with_suffix(".tmp")
        pq.write_table(encoded, temporary)
        _fsync_file(temporary)
        os.replace(temporary, final)
        return self.parts

    def finish(self, output: Path) -> None:
        import pyarrow.parquet as pq

        parts = sorted(self.parts_dir.glob("part-*.parquet"))
        temporary = output.with_name(output.name + ".tmp")
        with pq.ParquetWriter(temporary, self.schema) as writer:
            for part in parts:
                writer.write_table(pq.read_table(part, schema=self.schema))
        _fsync_file(temporary)
        os.replace(temporary, output)

    def close(self) -> None:
        pass


def _json_text(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False, default=str)


def _open_at(path: Path, position: int) -> Any:
    """Open for appending after cutting the file back to `position` (drops what no checkpoint covers)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = path.open("ab")
    handle.truncate(position)
    handle.seek(position)
    return handle


def _write_durably(handle: Any, data: bytes) -> int:
    handle.write(data)
    handle.flush()
    os.fsync(handle.fileno())
    return int(handle.tell())


def _fsync_file(path: Path) -> None:
    with path.open("rb") as handle:
        os.fsync(handle.fileno())
