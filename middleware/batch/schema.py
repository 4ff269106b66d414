"""The output's columns and their types, decided from the whole input before the first row is written.

Every batch, and every resumed run, writes the same columns with the same types, so a Parquet part never
disagrees with another and a CSV header never misses a column that first appears late:

- input columns: the union over all rows, in the order they are first seen;
- their types: for Parquet input, the file's own schema; otherwise what pyarrow infers for each column
  chunk by chunk, unified across chunks with `pyarrow.unify_schemas(promote_options="permissive")`, which
  is the type pyarrow would pick had it seen the whole column at once (null -> any type, int -> double,
  struct fields merged). A column whose values no one Arrow type can hold (1 in one row, "x" in another)
  is stored as JSON text, marked in the field's metadata, so that `read_rows` gives the values back;
- then the `promptfold_*` columns with fixed types (ADDED_FIELDS).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Any

ADDED_COLUMNS = (
    "promptfold_row",
    "promptfold_prompt",
    "promptfold_original_tokens",
    "promptfold_tokens",
    "promptfold_ratio",
    "promptfold_error",
)
JSON_TEXT = {b"promptfold.encoding": b"json"}  # field metadata: the column's values are JSON text
_CHUNK_ROWS = 1024


def added_fields(messages: bool) -> list[Any]:
    """The `promptfold_*` fields; promptfold_prompt holds JSON text when the rewrites are chat messages."""
    import pyarrow as pa

    return [
        pa.field("promptfold_row", pa.int64()),
        pa.field("promptfold_prompt", pa.string(), metadata=JSON_TEXT if messages else None),
        pa.field("promptfold_original_tokens", pa.int64()),
        pa.field("promptfold_tokens", pa.int64()),
        pa.field("promptfold_ratio", pa.float64()),
        pa.field("promptfold_error", pa.string()),
    ]


@dataclass(frozen=True)
class OutputSchema:
    """The output's `arrow` schema (input columns, then ADDED_COLUMNS, all nullable) and the input's row count."""

    arrow: Any  # pyarrow.Schema
    rows: int

    @property
    def columns(self) -> list[str]:
        return list(self.arrow.names)

    @property
    def json_columns(self) -> frozenset[str]:
        return frozenset(f.name for f in self.arrow if is_json_text(f))

    def fingerprint(self) -> str:
        """Identifies the columns and types (part of the job's identity: a resume must write the same)."""
        described = [(f.name, str(f.type), is_json_text(f)) for f in self.arrow]
        return hashlib.sha256(json.dumps(described).encode()).hexdigest()[:16]


def is_json_text(field: Any) -> bool:
    return bool(field.metadata) and field.metadata.get(b"promptfold.encoding") == b"json"


def from_arrow(input_schema: Any, rows: int, *, messages: bool) -> OutputSchema:
    """The output schema for a Parquet input with schema `input_schema`."""
    return _with_added(list(input_schema), rows, messages)


def from_rows(rows: Iterable[dict[str, Any]], *, messages: bool) -> OutputSchema:
    """The output schema for JSONL or CSV rows, read once, in chunks (see the module docstring)."""
    import pyarrow as pa

    types: dict[str, list[Any]] = {}  # column -> the types of its chunks, in first-seen column order
    mixed: set[str] = set()
    count = 0
    for chunk in _chunks(iter(rows)):
        count += len(chunk)
        for name in dict.fromkeys(key for row in chunk for key in row):
            seen = types.setdefault(name, [])
            if name in mixed:
                continue
            try:
                seen.append(pa.array([row.get(name) for row in chunk]).type)
            except (pa.ArrowException, TypeError, ValueError, OverflowError):
                mixed.add(name)  # values of this chunk alone share no type
    fields = [
        _unified(name, seen) if name not in mixed else _json_field(name) for name, seen in types.items()
    ]
    return _with_added(fields, count, messages)


def _unified(name: str, types: list[Any]) -> Any:
    import pyarrow as pa

    try:
        schemas = [pa.schema([pa.field(name, t)]) for t in types]
        return pa.unify_schemas(schemas, promote_options="permissive").field(name)
    except (pa.ArrowException, TypeError, ValueError):
        return _json_field(name)


def _json_field(name: str) -> Any:
    import pyarrow as pa

    return pa.field(name, pa.string(), metadata=JSON_TEXT)


def _with_added(fields: list[Any], rows: int, messages: bool) -> OutputSchema:
    import pyarrow as pa

    kept = [f.with_nullable(True) for f in fields if f.name not in ADDED_COLUMNS]
    return OutputSchema(pa.schema(kept + added_fields(messages)), rows)


def _chunks(rows: Iterator[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    while chunk := list(islice(rows, _CHUNK_ROWS)):
        yield chunk
