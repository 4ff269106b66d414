"""Writing test datasets in each format, and the small dataset the batch tests share."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any


def write_rows(path: Path, rows: list[dict[str, Any]], encoding: str = "utf-8") -> None:
    """`rows` as JSONL, CSV (header: the union of the rows' columns) or Parquet, by `path`'s suffix."""
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding=encoding)
    elif path.suffix == ".csv":
        columns = list(dict.fromkeys(key for row in rows for key in row))
        with path.open("w", newline="", encoding=encoding) as handle:
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            writer.writerows(rows)
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(rows), path)


def dataset(n: int) -> list[dict[str, Any]]:
    """`n` rows of nine words each, with an empty prompt at row 3 and a prompt that is not text at row 5."""
    rows: list[dict[str, Any]] = [
        {"id": i, "prompt": f"row {i} says one two three four five six", "q": "which row?"} for i in range(n)
    ]
    rows[3]["prompt"] = ""
    rows[5]["prompt"] = 42
    return rows
