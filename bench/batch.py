"""Batch rewrite throughput: a whole dataset through `promptfold batch rewrite`'s job, and what batching
the scorer buys over one row at a time.

    python bench/batch.py                                   # GSM8K dev (264 rows), rate 0.5, local scorer
    python bench/batch.py --rows 64 --batch-sizes 1,16      # a quicker look
    PROMPTFOLD_DEVICE=cuda python bench/batch.py            # the local scorer on a GPU
    python bench/batch.py --backend sglang://127.0.0.1:30000 --scorer backend   # SGLang's prompt logprobs

Rows: each GSM8K dev problem as a prompt to rewrite, its question followed by its worked solution (the
text of a chain-of-thought demonstration, 100-250 SmolLM2 tokens).

1. The job: `run_job` (the code the CLI runs: checkpointed appends, stats per row) over all rows with
   the default batch size, writing JSONL: rows/s, original tokens/s, tokens saved, achieved ratio.
2. Batching: the same rows rewritten in chunks of --chunk rows, each chunk once per batch size in a
   rotating order (so that the shared machine's drift hits every batch size alike); speed-up = time with
   batch size 1 / time with batch size B, summed over chunks. Outputs are compared too: a batch size
   that changed a row's result would be a bug, so the table counts rows whose text differs from batch 1.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

GSM8K_DEV = Path("/work/shared/eval/gsm8k/dev.jsonl")


def load_rows(path: Path, limit: int) -> list[dict]:
    rows = []
    for line in path.read_text().splitlines():
        if line.strip():
            item = json.loads(line)
            rows.append({"id": item["id"], "prompt": f"{item['question']}\n{item['answer']}"})
    return rows[:limit] if limit else rows


def job_run(rows: list[dict], options: dict, backend: str, batch_size: int) -> dict:
    from middleware.batch import JobSpec, run_job
    from middleware.batch.compress_rewriter import compress_rewriter

    rewriter = compress_rewriter(options, backend)
    try:
        with tempfile.TemporaryDirectory() as folder:
            source, target = Path(folder) / "in.jsonl", Path(folder) / "out.jsonl"
            source.write_text("".join(json.dumps(r) + "\n" for r in rows))
            result = run_job(JobSpec(source, target, batch_size=batch_size), rewriter)
    finally:
        rewriter.close()
    point = result.checkpoint
    return {
        "rows": point.rows_done,
        "rows_failed": point.failed,
        "seconds": round(result.wall_s, 2),
        "rows_per_s": round(point.rows_done / result.wall_s, 3),
        "tokens_in": point.tokens_in,
        "tokens_per_s": round(point.tokens_in / result.wall_s, 1),
        "tokens_saved": point.tokens_in - point.tokens_out,
        "ratio": round(point.tokens_out / point.tokens_in, 4) if point.tokens_in else None,
        "batch_size": batch_size,
    }


def batching_run(rows: list[dict], options: dict, backend: str, sizes: list[int], chunk: int) -> dict:
    from middleware.batch import RowInput
    from middleware.batch.compress_rewriter import compress_rewriter

    rewriter = compress_rewriter(options, backend)
    try:
        rewriter.rewrite([RowInput(text=rows[0]["prompt"])])  # load the model and warm up outside the clock
        seconds = {size: 0.0 for size in sizes}
        texts: dict[int, list[str]] = {size: [] for size in sizes}
        tokens_in = 0
        for number, start in enumerate(range(0, len(rows), chunk)):
            inputs = [RowInput(text=r["prompt"]) for r in rows[start : start + chunk]]
            order = sizes[number % len(sizes) :] + sizes[: number % len(sizes)]
            for size in order:
                began = time.perf_counter()
                outputs = []
                for at in range(0, len(inputs), size):
                    outputs += rewriter.rewrite(inputs[at : at + size])
                seconds[size] += time.perf_counter() - began
                texts[size] += [str(o.rewritten) for o in outputs]
                if size == sizes[0]:
                    tokens_in += sum(o.original_tokens or 0 for o in outputs)
            print(
                f"  chunk {number + 1}: " + ", ".join(f"B={s} {seconds[s]:.1f}s" for s in sizes), flush=True
            )
    finally:
        rewriter.close()
    single = seconds[min(sizes)]
    return {
        "rows": len(rows),
        "tokens_in": tokens_in,
        "sizes": [
            {
                "batch_size": size,
                "seconds": round(seconds[size], 2),
                "rows_per_s": round(len(rows) / seconds[size], 3),
                "tokens_per_s": round(tokens_in / seconds[size], 1),
                "speed_up": round(single / seconds[size], 2),
                "rows_differing_from_smallest": sum(
                    a != b for a, b in zip(texts[size], texts[min(sizes)], strict=True)
                ),
            }
            for size in sizes
        ],
    }


def markdown(result: dict, command: str) -> str:
    job, batching = result["job"], result["batching"]
    lines = [
        "# Batch rewrite: throughput and batching",
        "",
        f"`{command}` on {result['date']}, {result['machine']} (shared with other work: compare rows of",
        "one table, not absolute numbers across runs). Scorer: SmolLM2-135M-Instruct bf16, "
        + (
            f"in-process on {result['device']}."
            if result["scorer"] == "local"
            else f"prompt logprobs of {result['backend']}."
        ),
        f"Rows: GSM8K dev problems (question + worked solution), compressed at rate {result['rate']}.",
        "",
        "## The whole job (`run_job`, as `promptfold batch rewrite` runs it)",
        "",
        "| rows | failed | batch size | seconds | rows/s | tokens/s | tokens saved | achieved ratio |",
        "|---|---|---|---|---|---|---|---|",
        f"| {job['rows']} | {job['rows_failed']} | {job['batch_size']} | {job['seconds']} | {job['rows_per_s']} "
        f"| {job['tokens_per_s']} | {job['tokens_saved']:,} | {job['ratio']} |",
        "",
        f"## Batching the scorer vs one row at a time ({batching['rows']} rows, chunks of {result['chunk']},"
        " rotating order)",
        "",
        "| batch size | seconds | rows/s | tokens/s | speed-up vs 1 | rows whose output differs from 1 |",
        "|---|---|---|---|---|---|",
    ]
    for size in batching["sizes"]:
        lines.append(
            f"| {size['batch_size']} | {size['seconds']} | {size['rows_per_s']} | {size['tokens_per_s']} "
            f"| {size['speed_up']}x | {size['rows_differing_from_smallest']} |"
        )
    lines += [
        "",
        "tokens/s: original SmolLM2 tokens rewritten per second. Batching merges the scoring requests of",
        "all rows of a batch into one scorer call (padded forwards of up to 4,096 tokens); everything else",
        "(segmenting, budget, pruning, re-counting) stays per row.",
        "",
    ]
    return "\n".join(lines)


def render(result: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"batch rewrite, {result['batching']['rows']} rows, rate {result['rate']}")
    for column in ("batch size", "rows/s", "tokens/s", "speed-up", "differing rows"):
        table.add_column(column, justify="right")
    for size in result["batching"]["sizes"]:
        table.add_row(
            str(size["batch_size"]),
            f"{size['rows_per_s']:.2f}",
            f"{size['tokens_per_s']:.0f}",
            f"{size['speed_up']:.2f}x",
            str(size["rows_differing_from_smallest"]),
        )
    Console().print(table)
    job = result["job"]
    Console().print(
        f"whole job: {job['rows']} rows in {job['seconds']} s, {job['rows_per_s']} rows/s, "
        f"{job['tokens_per_s']} tokens/s, ratio {job['ratio']}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--input", type=Path, default=GSM8K_DEV, help="GSM8K-style JSONL (question, answer)")
    parser.add_argument("--rows", type=int, default=0, help="first N rows (0: all)")
    parser.add_argument("--rate", type=float, default=0.5)
    parser.add_argument("--job-batch-size", type=int, default=16)
    parser.add_argument(
        "--batch-sizes", default="1,8,16,32", help="batch sizes compared (the smallest first)"
    )
    parser.add_argument("--chunk", type=int, default=32, help="rows per round of the comparison")
    parser.add_argument(
        "--backend", default="local", help="local | sglang://HOST:PORT (its tokenizer counts)"
    )
    parser.add_argument("--scorer", default="local", choices=["local", "backend"], help="who scores tokens")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--markdown", type=Path, help="write the tables here")
    args = parser.parse_args()
    rows = load_rows(args.input, args.rows)
    sizes = sorted({int(s) for s in args.batch_sizes.split(",")})
    print(f"{len(rows)} rows; comparing batch sizes {sizes}", flush=True)
    options = {"rate": args.rate, "scorer": args.scorer}
    batching = batching_run(rows, options, args.backend, sizes, args.chunk)
    print("whole job ...", flush=True)
    job = job_run(rows, options, args.backend, args.job_batch_size)
    result = {
        "date": date.today().isoformat(),
        "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}",
        "rate": args.rate,
        "backend": args.backend,
        "scorer": args.scorer,
        "device": os.environ.get("PROMPTFOLD_DEVICE", "cpu"),
        "chunk": args.chunk,
        "job": job,
        "batching": batching,
    }
    render(result)
    command = "python " + " ".join(["bench/batch.py", *sys.argv[1:]])
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    if args.markdown:
        args.markdown.write_text(markdown(result, command))


if __name__ == "__main__":
    main()
