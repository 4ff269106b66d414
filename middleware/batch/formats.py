"""Reading rows from and appending rows to JSONL, CSV and Parquet files.

Readers yield plain dicts in file order. Writers only ever append, and report the durable size of what
they wrote (bytes for JSONL/CSV, parts for Parquet) so that a checkpoint can name a point to roll back to.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal, Protocol

Format = Literal["jsonl", "csv", "parquet"]
SUFFIXES: dict[str, Format] = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".parquet": "parquet"}


class FormatError(ValueError):
    """A file whose format is unknown or whose content does not parse; the message names the place."""


def format_of(path: Path) -> Format:
    fmt = SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise FormatError(f"'{path}': unknown format; use .jsonl, .csv or .parquet")
    return fmt


def count_rows(path: Path) -> int:
    fmt = format_of(path)
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(path).metadata.num_rows)
    return sum(1 for _ in read_rows(path))


def read_rows(path: Path, skip: int = 0) -> Iterator[dict[str, Any]]:
    """Rows of `path` from row number `skip` on."""
    fmt = format_of(path)
    if fmt == "jsonl":
        yield from _read_jsonl(path, skip)
    elif fmt == "csv":
        with path.open(newline="", encoding="utf-8") as handle:
            for number, row in enumerate(csv.DictReader(handle)):
                if number >= skip:
                    yield dict(row)
    else:
        import pyarrow.parquet as pq

        seen = 0
        for batch in pq.ParquetFile(path).iter_batches(batch_size=1024):
            rows = batch.to_pylist()
            if seen + len(rows) > skip:
                yield from rows[max(skip - seen, 0) :]
            seen += len(rows)


def _read_jsonl(path: Path, skip: int) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        number = 0
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            if number >= skip:
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as error:
                    raise FormatError(f"'{path}' line {line_number} is not JSON: {error.msg}") from error
                yield row if isinstance(row, dict) else {"value": row}
            number += 1


def parquet_schema(path: Path) -> Any:
    import pyarrow.parquet as pq

    return pq.ParquetFile(path).schema_arrow


class RowWriter(Protocol):
    def append(self, rows: list[dict[str, Any]]) -> int:
        """Append rows durably (flushed and fsynced); return the new durable position."""
        ...

    def close(self) -> None: ...


class JsonlWriter:
    def __init__(self, path: Path, position: int) -> None:
        self.handle = _open_at(path, position)

    def append(self, rows: list[dict[str, Any]]) -> int:
        data = "".join(json.dumps(row, ensure_ascii=False, default=str) + "\n" for row in rows)
        return _write_durably(self.handle, data.encode("utf-8"))

    def close(self) -> None:
        self.handle.close()


class CsvWriter:
    def __init__(self, path: Path, position: int, columns: list[str]) -> None:
        self.handle = _open_at(path, position)
        self.columns = columns
        if position == 0:
            _write_durably(self.handle, self._encode([dict(zip(columns, columns, strict=True))]))

    def append(self, rows: list[dict[str, Any]]) -> int:
        return _write_durably(self.handle, self._encode(rows))

    def _encode(self, rows: list[dict[str, Any]]) -> bytes:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=self.columns, extrasaction="ignore", lineterminator="\n")
        for row in rows:
            writer.writerow({k: _csv_cell(v) for k, v in row.items()})
        return buffer.getvalue().encode("utf-8")

    def close(self) -> None:
        self.handle.close()


def _csv_cell(value: Any) -> Any:
    return json.dumps(value, ensure_ascii=False) if isinstance(value, list | dict) else value


class ParquetPartsWriter:
    """Parquet cannot be appended to: each batch becomes one part file; `finish` joins them."""

    def __init__(self, parts_dir: Path, parts_done: int, schema: Any) -> None:
        self.parts_dir = parts_dir
        self.schema = schema
        parts_dir.mkdir(parents=True, exist_ok=True)
        for stale in sorted(parts_dir.glob("part-*.parquet"))[parts_done:]:
            stale.unlink()  # written after the last checkpoint: they will be written again
        self.parts = parts_done

    def append(self, rows: list[dict[str, Any]]) -> int:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pylist(rows, schema=self.schema)
        self.parts += 1
        final = self.parts_dir / f"part-{self.parts:06d}.parquet"
        temporary = final.with_suffix(".tmp")
        pq.write_table(table, temporary)
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
