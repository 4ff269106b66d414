"""`promptfold batch rewrite`: compress every prompt of a dataset, resumably."""

from __future__ import annotations

import argparse
from typing import Any

HELP = "rewrite (compress) the prompts of a JSONL, CSV or Parquet dataset"
DESCRIPTION = """\
Rewrite every row's prompt and write the rows, with all their columns, plus promptfold_prompt (the
rewritten prompt) and per-row stats (promptfold_original_tokens, promptfold_tokens, promptfold_ratio,
promptfold_error) to OUTPUT. Rows go through the scorer in batches. The output is appended with a
checkpoint beside it: if the run is killed, the same command continues where it stopped, and every
input row appears in the output exactly once. A row that cannot be rewritten (empty prompt, wrong
type) is written with its error and counted; it never stops the run. At the end OUTPUT.summary.json
and OUTPUT.ratios.png (a histogram of achieved ratios) are written.
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

    from ..batch import JobError, JobSpec, run_job
    from ..batch.compress_rewriter import compress_rewriter
    from ..batch.dry_run import estimate
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
    )
    from backend import BackendError, UserError

    try:
        rewriter = compress_rewriter(parse_options(args.compress), args.backend)
    except UserError as error:
        raise CliError(f"--compress: {error}") from error
    except BackendError as error:
        raise CliError(f"--backend: {error}") from error
    try:
        if args.dry_run:
            print(json.dumps(estimate(spec, rewriter, args.sample), indent=1))
            return 0
        with batch_progress() as progress:
            result = run_job(spec, rewriter, progress)
    except JobError as error:
        raise CliError(str(error)) from error
    finally:
        rewriter.close()
    summary = summary_of(spec, result, {"compress": rewriter.describe()})
    json_path, png_path = write_summary(spec, summary, result.ratios)
    print(
        json.dumps(
            {
                k: summary[k]
                for k in (
                    "rows",
                    "rows_ok",
                    "rows_failed",
                    "tokens_saved",
                    "overall_ratio",
                    "rows_per_s",
                    "resumed_from_row",
                )
            }
        )
    )
    print(f"promptfold: wrote {spec.output}, {json_path.name}, {png_path.name}")
    return 0
