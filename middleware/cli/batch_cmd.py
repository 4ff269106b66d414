"""`promptfold batch rewrite`: compress every prompt of a dataset, resumably."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

HELP = "rewrite (compress) the prompts of a JSONL, CSV or Parquet dataset"
DESCRIPTION = """\
Rewrite every row's prompt and write the rows, with all their columns, plus promptfold_prompt (the
rewritten prompt) and per-row stats (promptfold_original_tokens, promptfold_tokens, promptfold_ratio,
promptfold_error, promptfold_row) to OUTPUT. Rows go through the scorer in batches. At the end
OUTPUT.summary.json and OUTPUT.ratios.png (a histogram of achieved ratios) are written.

bad rows: a row that cannot be rewritten (no prompt field, an empty prompt, a prompt that is not text,
  messages that are not a list of message objects, a row the rewriter fails on) is written with its
  reason in promptfold_error and counted in the summary (rows_failed, rows_failed_by_reason); it never
  stops the run.
columns: the input is read once before any row is written, and the output keeps every column of every
  row (also columns that first appear late). Parquet output gets one schema for the whole file: the
  input's own for Parquet input, else the types pyarrow infers from all rows; a column whose values
  have no common type (1 in one row, "x" in another) is stored as JSON text. CSV output has the union of
  all columns as its header; lists and objects are written as JSON text.
encodings: JSONL and CSV input may be UTF-8 (with or without a BOM), UTF-16/32 with a BOM, or a legacy
  encoding (cp1252, latin-1, ...), which is detected and reported on stderr and in the summary
  (input_encoding); a guess can be wrong on a short file: --encoding sets it. Output is always UTF-8.
resume: the output is appended with a checkpoint beside it. If the run is killed or crashes, the same
  command continues where it stopped, and every input row appears in the output exactly once. Rows that
  were being rewritten when a run died are rewritten one at a time on the next run; if a row crashes the
  process again, the run after writes it with its error. --overwrite starts over.
"""
EPILOG = """\
examples:
  promptfold batch rewrite prompts.jsonl -o folded.jsonl --field prompt --compress rate=0.5
  promptfold batch rewrite chats.parquet -o folded.parquet --messages-field messages --compress rate=0.4
  promptfold batch rewrite qa.csv -o qa.folded.csv --field context --question-field question \\
      --compress rate=0.3,mode=question_aware
  promptfold batch rewrite prompts.jsonl -o folded.jsonl --compress rate=0.5 --dry-run

--compress takes the same options as the proxy's "promptfold": {"compress": {...}} object, written as
key=value pairs separated by commas (numbers and true/false are converted).
"""


def register(commands: Any) -> None:
    parser = commands.add_parser("batch", help=HELP, description=HELP)
    actions = parser.add_subparsers(dest="batch_action", metavar="ACTION")
    rewrite = actions.add_parser(
        "rewrite",
        help=HELP,
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    rewrite.add_argument("input", help="a .jsonl, .csv or .parquet file")
    rewrite.add_argument("-o", "--output", required=True, help="where to write (.jsonl, .csv or .parquet)")
    rewrite.add_argument("--field", default="prompt", help="column holding the prompt text (default: prompt)")
    rewrite.add_argument("--messages-field", help="column holding chat messages instead of a prompt text")
    rewrite.add_argument("--question-field", help="column holding the question (question-aware compression)")
    rewrite.add_argument("--compress", default="rate=0.5", help="compression options (default: rate=0.5)")
    rewrite.add_argument("--batch-size", type=int, default=16, help="rows per scorer batch (default: 16)")
    rewrite.add_argument("--workers", type=int, default=1, help="batches rewritten at once (default: 1)")
    rewrite.add_argument(
        "--backend", default="local", help="model whose tokenizer/scorer is used (default: local)"
    )
    rewrite.add_argument(
        "--encoding", help="text encoding of a JSONL/CSV input, e.g. cp1252 (default: detected)"
    )
    rewrite.add_argument("--overwrite", action="store_true", help="start over even if OUTPUT exists")
    rewrite.add_argument(
        "--dry-run", action="store_true", help="estimate the savings on a sample; write nothing"
    )
    rewrite.add_argument("--sample", type=int, default=32, help="rows in the --dry-run sample (default: 32)")
    rewrite.set_defaults(run=run_rewrite)
    parser.set_defaults(run=lambda _args: parser.print_help() or 2)


def parse_options(text: str) -> dict[str, Any]:
    """`rate=0.5,mode=question_aware` -> {"rate": 0.5, "mode": "question_aware"}."""
    from . import CliError

    options: dict[str, Any] = {}
    for pair in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise CliError(f"--compress: '{pair}' is not key=value")
        options[key.strip()] = _value(value.strip())
    return options


def _value(text: str) -> Any:
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def run_rewrite(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from ..batch import JobError, JobSpec, inspect_input, run_job
    from ..batch.dry_run import estimate
    from ..batch.encoding import UTF8
    from ..batch.summary import summary_of, write_summary
    from . import CliError
    from .progress import batch_progress

    spec = JobSpec(
        Path(args.input),
        Path(args.output),
        field=None if args.messages_field else args.field,
        messages_field=args.messages_field,
        question_field=args.question_field,
        batch_size=max(args.batch_size, 1),
        workers=max(args.workers, 1),
        overwrite=args.overwrite,
        encoding=args.encoding,
    )
    try:
        source = inspect_input(spec)  # before loading a model: a bad input fails at once
    except JobError as error:
        raise CliError(str(error)) from error
    if source.encoding not in (None, UTF8) and not args.encoding:
        print(
            f"promptfold: reading {spec.input} as {source.encoding} (detected; --encoding sets it)",
            file=sys.stderr,
        )
    rewriter = _rewriter(args)
    try:
        if args.dry_run:
            print(json.dumps(estimate(spec, rewriter, args.sample, source=source), indent=1))
            return 0
        with batch_progress() as progress:
            result = run_job(spec, rewriter, progress, source)
    except JobError as error:
        raise CliError(str(error)) from error
    finally:
        rewriter.close()
    summary = summary_of(spec, result, {"compress": rewriter.describe()})
    json_path, png_path = write_summary(spec, summary, result.ratios)
    shown = (
        "rows",
        "rows_ok",
        "rows_failed",
        "tokens_saved",
        "overall_ratio",
        "rows_per_s",
        "resumed_from_row",
    )
    print(json.dumps({k: summary[k] for k in shown}))
    print(f"promptfold: wrote {spec.output}, {json_path.name}, {png_path.name}")
    return 0


def _rewriter(args: argparse.Namespace) -> Any:
    """The compression rewriter for --compress on --backend; the fake one when tests ask for it."""
    from backend import BackendError, UserError

    from ..batch.fake_rewriter import FAKE_REWRITER_ENV
    from . import CliError

    fake = os.environ.get(FAKE_REWRITER_ENV)
    if fake is not None:
        from ..batch.fake_rewriter import FakeRewriter

        print(
            f"promptfold: {FAKE_REWRITER_ENV} is set: rows get the fake rewriter, not compression",
            file=sys.stderr,
        )
        try:
            return FakeRewriter(**parse_options(fake))
        except TypeError as error:
            raise CliError(f"{FAKE_REWRITER_ENV}: {error}") from error
    from ..batch.compress_rewriter import compress_rewriter

    try:
        return compress_rewriter(parse_options(args.compress), args.backend)
    except UserError as error:
        raise CliError(f"--compress: {error}") from error
    except BackendError as error:
        raise CliError(f"--backend: {error}") from error
