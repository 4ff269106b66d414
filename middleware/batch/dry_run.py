"""`--dry-run`: rewrite a sample of rows, write nothing, and estimate what the whole file would save."""

from __future__ import annotations

import random
import statistics
import time
from itertools import islice
from typing import Any

from .formats import read_rows
from .job import InputFile, JobSpec, Rewriter, RowInput, inspect_input


def estimate(
    spec: JobSpec, rewriter: Rewriter, sample_size: int = 32, seed: int = 0, source: InputFile | None = None
) -> dict[str, Any]:
    """Raises JobError as `run_job` does (missing file, unknown format, undecodable text)."""
    source = source or inspect_input(spec)
    total = source.schema.rows
    # A seeded sample spread over the file, read in one pass (reservoir of the first 20 000 rows).
    rows = list(islice(read_rows(spec.input, encoding=source.encoding), 20_000))
    sample = random.Random(seed).sample(rows, min(sample_size, len(rows)))
    inputs = [spec.input_of(row) for row in sample]
    valid = [item for item in inputs if isinstance(item, RowInput)]
    started = time.perf_counter()
    outputs = rewriter.rewrite(valid) if valid else []
    seconds = time.perf_counter() - started
    done = [o for o in outputs if o.error is None and o.original_tokens]
    ratios = [(o.tokens or 0) / (o.original_tokens or 1) for o in done]
    tokens_in = sum(o.original_tokens or 0 for o in done)
    tokens_out = sum(o.tokens or 0 for o in done)
    per_row_in = tokens_in / len(done) if done else 0.0
    ratio = tokens_out / tokens_in if tokens_in else None
    failing = len(inputs) - len(valid) + sum(1 for o in outputs if o.error is not None)
    return {
        "rows_in_file": total,
        "input_encoding": source.encoding,
        "sample_rows": len(sample),
        "sample_failed": failing,
        "sample_tokens_in": tokens_in,
        "sample_tokens_out": tokens_out,
        "ratio": round(ratio, 4) if ratio is not None else None,
        "ratio_median": round(statistics.median(ratios), 4) if ratios else None,
        "estimated_tokens_in": round(per_row_in * total),
        "estimated_tokens_saved": round(per_row_in * total * (1 - ratio)) if ratio is not None else None,
        "estimated_seconds": round(seconds / max(len(sample), 1) * total, 1),
    }
