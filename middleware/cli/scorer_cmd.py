"""`promptfold scorer`: the learned token scorer (train, install, info)."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

HELP = "train, install or inspect the learned token scorer (the classifier)"
DESCRIPTION = """\
The classifier scorer is a small encoder (all-MiniLM-L6-v2) distilled from SmolLM2's token scores:
`--scorer classifier` compresses with it, many times faster on a CPU than the causal LM.

  train    build the corpus (eval dev splits + installed packages' docs), score it with the teacher,
           fit the student, evaluate it, export it (int8 ONNX + tokenizer + card) to OUT/model
  install  put a trained export (a folder, or classifier.tar.part* pieces of one) into the package
  info     what the installed classifier is, or why it cannot be used
"""
EPILOG = """\
examples:
  promptfold scorer train --out /tmp/scorer --device cuda
  promptfold scorer train --out /tmp/tiny --budget-chars 60000 --epochs 1 --layers 2     # a CPU smoke run
  promptfold scorer install /tmp/scorer/model
  promptfold scorer info
"""


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "scorer",
        help=HELP,
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    train = actions.add_parser("train", help="train and export a classifier")
    train.add_argument("--out", required=True, help="folder for the export (OUT/model) and the report")
    train.add_argument("--device", default="cpu", help="teacher and training device: cpu or cuda")
    train.add_argument("--teacher", help="the causal LM to imitate (default: the packaged SmolLM2)")
    train.add_argument("--student", help="the BERT folder to start from (default: packaged MiniLM)")
    train.add_argument("--layers", type=int, help="keep this many encoder layers (default: all 6)")
    train.add_argument("--eval-dir", help="evaluation sets, dev splits read (default: shared/eval)")
    train.add_argument("--budget-chars", type=int, default=12_000_000, help="corpus size (characters)")
    train.add_argument("--eval-percent", type=int, default=8, help="documents held out for evaluation")
    train.add_argument("--epochs", type=float, default=3.0)
    train.add_argument("--batch-rows", type=int, default=64)
    train.add_argument("--lr", type=float, default=1e-4)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--per-channel", action="store_true", help="int8 weights per channel")
    train.add_argument("--eval-requests", type=int, default=1500, help="held-out requests for the int8 check")
    train.add_argument("--train-seconds", type=float, help="stop fitting after this long (default: no limit)")
    train.add_argument(
        "--time-budget", type=float, help="seconds for the whole run: fitting stops early to finish in time"
    )
    train.set_defaults(run=run_train)
    install = actions.add_parser("install", help="install a trained export into the package")
    install.add_argument("source", help="a folder with card.json etc., or with classifier.tar.part* files")
    install.add_argument("--target", help="install here instead of the package folder")
    install.set_defaults(run=run_install)
    info = actions.add_parser("info", help="show the installed classifier's card")
    info.set_defaults(run=run_info)
    parser.set_defaults(run=lambda args: parser.print_help() or 2)


def run_train(args: argparse.Namespace) -> int:
    from ..compress.classifier.training.run import TrainConfig, train
    from . import CliError

    config = TrainConfig(
        out=Path(args.out),
        device=args.device,
        teacher=args.teacher,
        student=args.student,
        layers=args.layers,
        eval_dir=_eval_dir(args.eval_dir),
        budget_chars=args.budget_chars,
        eval_percent=args.eval_percent,
        epochs=args.epochs,
        batch_rows=args.batch_rows,
        lr=args.lr,
        seed=args.seed,
        per_channel=args.per_channel,
        eval_requests=args.eval_requests,
        train_seconds=args.train_seconds,
        time_budget_s=args.time_budget,
    )
    config.out.mkdir(parents=True, exist_ok=True)
    try:
        report = train(config, _progress)
    except Exception as error:  # a model that cannot load, a device that is not there
        from backend import UserError

        if isinstance(error, UserError):
            raise CliError(str(error)) from error
        raise
    metrics = report["metrics"]
    print(
        json.dumps(
            {"metrics": metrics, "seconds": report["seconds"], "data": report["card"]["data"]}, indent=1
        )
    )
    print(f"promptfold: classifier written to {config.out / 'model'}", file=sys.stderr)
    return 0


def run_install(args: argparse.Namespace) -> int:
    from ..compress.classifier.card import PACKAGED, ClassifierUnavailable
    from ..compress.classifier.training.export import install
    from . import CliError

    target = Path(args.target) if args.target else PACKAGED
    try:
        card = install(Path(args.source), target)
    except (ClassifierUnavailable, OSError) as error:
        raise CliError(str(error)) from error
    print(
        f"promptfold: installed the classifier ({card.student.get('base')}, teacher "
        f"{card.teacher.get('model_id')}, {card.created}) into {target}"
    )
    return 0


def run_info(args: argparse.Namespace) -> int:
    from ..compress.classifier.card import ClassifierUnavailable, classifier_dir, read_card

    try:
        card = read_card()
    except ClassifierUnavailable as error:
        print(f"promptfold: {error}")
        return 1
    data = json.loads(card.to_json())
    data["student"]["onnx_names"] = f"{len(card.student.get('onnx_names', {}))} weights"
    print(json.dumps({"folder": str(classifier_dir()), **data}, indent=1, ensure_ascii=False))
    return 0


def _eval_dir(given: str | None) -> Path | None:
    """The evaluation sets: --eval-dir, PROMPTFOLD_EVAL_DIR, ./shared/eval, or ../shared/eval."""
    import os

    for candidate in (given, os.environ.get("PROMPTFOLD_EVAL_DIR"), "shared/eval", "../shared/eval"):
        if candidate and Path(candidate).is_dir():
            return Path(candidate).resolve()
    return None


@contextlib.contextmanager
def _progress(description: str, total: int) -> Iterator[Callable[[int], None]]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn(f"[bold]{description:<20}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, transient=False) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.update(task, advance=n)
