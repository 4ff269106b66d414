"""The pure parts of bench/e2e_sglang.py: one request's sample, figures over samples, NQ prompts built to a
token target, and the markdown report (a summary table, one table per path, every failure)."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.proxy_overhead import percentile


@dataclass
class Sample:
    """One chat request as the client saw it. Times in seconds from sending the request; token counts
    from the response's `usage`; `report` is promptfold's `promptfold` field (None direct)."""

    path: str
    variant: str  # who served it: "promptfold", "direct", "promptfold sot", ...
    ok: bool = True
    latency_s: float | None = None
    first_chunk_s: float | None = None  # streaming: the first SSE chunk (a role chunk may come first)
    ttft_s: float | None = None  # streaming: the first chunk carrying answer text
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached_tokens: int | None = None
    text: str = ""
    report: dict[str, Any] | None = None
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def stage(self, name: str) -> dict[str, Any] | None:
        """The report of stage `name` in promptfold's report, if it ran."""
        for stage in (self.report or {}).get("stages", []):
            if stage.get("stage") == name:
                return dict(stage)
        return None


@dataclass
class PathResult:
    """What one path gives the report: a headline row, a detail table, notes and the failures met."""

    name: str
    headline: dict[str, str] = field(default_factory=dict)
    table: list[dict[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)

    def record(self, sample: Sample) -> Sample:
        self.samples.append(sample)
        if not sample.ok:
            self.failures.append(f"{sample.variant}: {sample.error}")
        return sample


# --- figures ------------------------------------------------------------------------------------------


def ok(samples: Iterable[Sample], variant: str | None = None) -> list[Sample]:
    return [s for s in samples if s.ok and (variant is None or s.variant == variant)]


def p50(values: Sequence[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return statistics.median(kept) if kept else None


def p95(values: Sequence[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return percentile(kept, 95) if kept else None


def mean(values: Sequence[float | int | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return statistics.fmean(kept) if kept else None


def ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


def ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.1f}"


def num(value: float | int | None, digits: int = 0) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}" if digits else f"{round(value)}"


def times(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def share(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def count_of(flags: Sequence[bool]) -> str:
    return f"{sum(flags)}/{len(flags)}"


# --- prompts to a token target --------------------------------------------------------------------------


def fit_documents(
    own: Sequence[str],
    gold: int,
    spare: Iterable[str],
    count: Callable[[str], int],
    target: int,
) -> list[str]:
    """Documents whose token count (`count` of each, summed) is at most `target` and near it: the row's
    own documents with distractors dropped from the end while over (the gold one, `own[gold]`, always
    stays, at its place), then `spare` documents appended while they fit."""
    kept = [(doc, count(doc), i == gold) for i, doc in enumerate(own)]
    while sum(size for _, size, _ in kept) > target and len(kept) > 1:
        kept.pop(max(i for i, (_, _, is_gold) in enumerate(kept) if not is_gold))
    docs = [doc for doc, _, _ in kept]
    total = sum(size for _, size, _ in kept)
    for doc in spare:
        if total >= target:
            break
        size = count(doc)
        if total + size <= target:
            docs.append(doc)
            total += size
    return docs


def numbered(docs: Sequence[str]) -> list[str]:
    """`Document [i](Title: ...)` blocks renumbered 1..n in their order (after fit_documents moved them)."""
    out = []
    for i, doc in enumerate(docs, 1):
        body = doc.split("]", 1)[1] if doc.startswith("Document [") else doc
        out.append(f"Document [{i}]{body}")
    return out


# --- markdown -------------------------------------------------------------------------------------------

HEADLINE = [
    "path",
    "requests ok",
    "promptfold p50 ms",
    "direct p50 ms",
    "promptfold / direct",
    "prompt tokens promptfold / direct",
    "cached tokens promptfold / direct",
    "check",
]


def table(rows: Sequence[dict[str, str]], columns: Sequence[str] | None = None) -> list[str]:
    """A markdown table; columns default to the keys of the rows, in first-seen order."""
    if not rows:
        return ["(no rows)"]
    if columns is None:
        columns = list(dict.fromkeys(key for row in rows for key in row))
    lines = ["| " + " | ".join(columns) + " |", "| " + " | ".join("---" for _ in columns) + " |"]
    for row in rows:
        cells = [str(row.get(c, "-")).replace("|", "\\|").replace("\n", " ") for c in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def render(results: Sequence[PathResult], meta: dict[str, Any]) -> str:
    """The whole report: what ran where, the summary, each path's table and notes, every failure."""
    lines = [f"# {meta.get('title', 'promptfold end to end')}", ""]
    for key in ("date", "command", "proxy", "direct", "gist proxy", "gist direct", "cold prompts"):
        if meta.get(key):
            lines.append(f"- {key}: {meta[key]}")
    lines += ["", "## Summary", ""]
    lines += table([{"path": r.name, **r.headline} for r in results], HEADLINE)
    for result in results:
        lines += ["", f"## {result.name}", ""]
        if result.table:
            lines += table(result.table)
        lines += [f"- {note}" for note in result.notes]
    failures = [f"{r.name}: {f}" for r in results for f in r.failures]
    lines += ["", "## Failures", ""]
    lines += [f"- {f}" for f in failures] if failures else ["none"]
    return "\n".join(lines) + "\n"
