"""What a finished batch job reports: a JSON summary and a PNG histogram of achieved ratios."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from .job import JobResult, JobSpec


def summary_of(spec: JobSpec, result: JobResult, options: dict[str, Any]) -> dict[str, Any]:
    point = result.checkpoint
    ratios = result.ratios
    return {
        "input": str(spec.input),
        "input_encoding": result.encoding,
        "output": str(spec.output),
        "rows": result.total_rows,
        "rows_written": point.rows_done,
        "rows_ok": point.ok,
        "rows_failed": point.failed,
        "rows_failed_by_reason": point.errors,
        "tokens_in": point.tokens_in,
        "tokens_out": point.tokens_out,
        "tokens_saved": point.tokens_in - point.tokens_out,
        "overall_ratio": round(point.tokens_out / point.tokens_in, 4) if point.tokens_in else None,
        "ratio_mean": round(statistics.fmean(ratios), 4) if ratios else None,
        "ratio_median": round(statistics.median(ratios), 4) if ratios else None,
        "work_seconds": round(point.seconds, 2),
        "rows_per_s": round(point.rows_done / point.seconds, 3) if point.seconds else None,
        "tokens_per_s": round(point.tokens_in / point.seconds, 1) if point.seconds else None,
        "runs": point.runs,
        "resumed_from_row": result.resumed_from,
        "options": options,
    }


def write_summary(spec: JobSpec, summary: dict[str, Any], ratios: list[float]) -> tuple[Path, Path]:
    json_path = spec.output.with_name(spec.output.name + ".summary.json")
    json_path.write_text(json.dumps(summary, indent=1))
    png_path = spec.output.with_name(spec.output.name + ".ratios.png")
    _histogram(ratios, png_path, f"{spec.input.name}: achieved ratios ({len(ratios)} rows)")
    return json_path, png_path


def _histogram(ratios: list[float], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 3.5), dpi=100)
    axes.hist(ratios or [0.0], bins=30, range=(0.0, 1.0), color="#4c72b0", edgecolor="white")
    axes.set_xlabel("compressed tokens / original tokens")
    axes.set_ylabel("rows")
    axes.set_title(title, fontsize=10)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
