"""The tables and example answers that bench/organize.py prints and writes as markdown."""

from __future__ import annotations

from typing import Any

MODES = ("plain", "sot", "pipelined")


def render(result: dict[str, Any]) -> str:
    """Rich tables to the terminal; returns the same as markdown."""
    from rich.console import Console

    console = Console()
    md: list[str] = []
    if "latency" in result:
        latency = result["latency"]
        rows = []
        for group in sorted(latency["table"], key=lambda g: (g == "all", g)):
            row = latency["table"][group]
            rows.append(
                [
                    f"**{group}**" if group == "all" else group,
                    str(row["questions"]),
                    f"{row['plain_s']:.2f}",
                    f"{row['sot_s']:.2f}",
                    f"{row['pipelined_s']:.2f}",
                    f"{row['sot_speedup']:.2f}x",
                    f"{row['pipelined_speedup']:.2f}x",
                    f"{row['plain_tokens']:.0f} / {row['sot_tokens']:.0f} / {row['pipelined_tokens']:.0f}",
                    f"{row['sot_all_tokens']:.0f} / {row['pipelined_all_tokens']:.0f}",
                ]
            )
        title = f"end-to-end latency, median per question ({result['backend']}, max_tokens {result['max_tokens']})"
        _table(console, md, title, LATENCY_HEAD, rows)
        rows = [
            [
                mode,
                str(row["branches"]),
                "n/a"
                if row["min_share_of_shared_prefix"] is None
                else f"{row['min_share_of_shared_prefix']:.3f}",
                f"{row['branches_at_least_90pct']}/{row['branches']}",
                f"{row['cached_share_of_expansion_prompts']:.3f}",
                f"{row['median_points']:.0f}",
                str(latency["fallbacks"][mode]),
            ]
            for mode, row in latency["cache"].items()
        ]
        _table(console, md, "prefix reuse of the expansion prompts", CACHE_HEAD, rows)
    router = result.get("router")
    if router and "skipped" in router:
        console.print(f"router: skipped ({router['skipped']})")
        md.append(f"router: skipped ({router['skipped']})")
    elif router:
        rows = [
            [name, *(str(row[k]) for k in ("questions", "labelled_sot", "routed_sot", "by_rule"))]
            + [f"{row[k]:.3f}" for k in ("accuracy", "precision", "recall")]
            for name, row in router.items()
        ]
        _table(console, md, 'router: "use SoT" against the labels', ROUTER_HEAD, rows)
        line = ", ".join(
            f"{c} {v['routed']}/{v['n']} (labelled {v['labelled']})"
            for c, v in router["vicuna"]["by_category"].items()
        )
        console.print(f"Vicuna routed to SoT by category: {line}")
        md += [f"Vicuna routed to SoT by category: {line}", ""]
    return "\n".join(md)


LATENCY_HEAD = [
    "category",
    "questions",
    "plain s",
    "sot s",
    "pipelined s",
    "speed-up sot",
    "speed-up pipelined",
    "answer tokens plain / sot / pipelined",
    "all generated (with skeleton) sot / pipelined",
]
CACHE_HEAD = [
    "mode",
    "branches",
    "min cached / shared prefix",
    "branches >= 90%",
    "cached share of expansion prompts",
    "median points",
    "fallbacks to plain",
]
ROUTER_HEAD = [
    "set",
    "questions",
    "labelled SoT",
    "routed SoT",
    "by a rule",
    "accuracy",
    "precision",
    "recall",
]


def _table(console: Any, md: list[str], title: str, head: list[str], rows: list[list[str]]) -> None:
    """Print one rich table and append it to `md` as a markdown table."""
    from rich.table import Table

    table = Table(title=title)
    for column in head:
        table.add_column(column, justify="left" if column in ("category", "mode", "set") else "right")
    md += ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for row in rows:
        table.add_row(*row)
        md.append("| " + " | ".join(row) + " |")
    md.append("")
    console.print(table)


def examples(runs: list[Any], count: int) -> str:
    """`count` questions answered in every mode, each answer in full, for reading side by side."""
    if not runs:
        return ""
    texts = sorted({r.question.text for r in runs if r.mode == "sot" and r.plan == "sot"})[:count]
    parts = []
    for text in texts:
        parts.append(f"#### {text}")
        for mode in MODES:
            run = next(r for r in runs if r.question.text == text and r.mode == mode)
            parts.append(
                f"{mode} ({run.latency_s:.2f} s, {run.answer_tokens} answer tokens):\n\n```\n{run.text.strip()}\n```"
            )
    return "\n\n".join(parts)
