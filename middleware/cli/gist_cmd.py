"""`promptfold gist`: train, list, show, evaluate and delete gists (soft tokens for a long prefix)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

DROPPED = "prefix dropped"
HELP = "train and manage gists: k trained vectors that stand in for a long recurring prefix"
EPILOG = """\
examples:
  promptfold gist train --prefix-file system_prompt.txt --tokens 16
  promptfold gist train --prefix-file fewshot.txt --role user --tokens 16 --queries questions.txt
  promptfold gist list
  promptfold gist eval g-0123456789ab-01234567-k16 --queries heldout.txt
  promptfold gist rm g-0123456789ab-01234567-k16

A gist is used by `promptfold serve` for every chat request whose prompt begins with its prefix (as a
system message, or with --role user as the start of the first user message), when the backend takes
input embeddings (the embedded engine; SGLang launched with --disable-radix-cache).
Gists live in DATA_DIR/gists (PROMPTFOLD_DATA_DIR, default ~/.local/share/promptfold).
"""


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "gist",
        help=HELP,
        description=HELP,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="gist_action", metavar="ACTION")

    train = actions.add_parser("train", help="distil a prefix into k gist vectors and store them")
    train.add_argument("--prefix-file", required=True, help="the prefix text (UTF-8)")
    train.add_argument("--tokens", "-k", type=int, required=True, help="k, the number of gist vectors")
    train.add_argument("--role", choices=["system", "user"], default="system", help="where the prefix sits")
    train.add_argument(
        "--queries", help="queries that follow the prefix, one a line or JSONL (default: sampled)"
    )
    train.add_argument("--num-queries", type=int, default=48, help="queries to sample (default: 48)")
    train.add_argument("--max-answer-tokens", type=int, default=64, help="answer length learnt (default: 64)")
    train.add_argument("--steps", type=int, default=150, help="most optimizer steps (default: 150)")
    train.add_argument("--batch-size", type=int, default=4, help="continuations per step (default: 4)")
    train.add_argument("--lr", type=float, default=0.02, help="Adam learning rate (default: 0.02)")
    train.add_argument("--seed", type=int, default=0, help="seed for queries, split and training")
    _model_args(train)
    train.set_defaults(run=run_train)

    listing = actions.add_parser("list", help="list stored gists")
    listing.add_argument("--json", action="store_true", help="print the records as JSON")
    _store_arg(listing)
    listing.set_defaults(run=run_list)

    show = actions.add_parser("show", help="print a gist's metadata (JSON)")
    show.add_argument("id")
    _store_arg(show)
    show.set_defaults(run=run_show)

    evaluate = actions.add_parser("eval", help="measure how well a gist stands in for its prefix")
    evaluate.add_argument("id")
    evaluate.add_argument(
        "--queries", help="held-out queries, one a line or JSONL (default: freshly sampled)"
    )
    evaluate.add_argument("--num-queries", type=int, default=16, help="queries to sample (default: 16)")
    evaluate.add_argument("--max-answer-tokens", type=int, default=64, help="answer length (default: 64)")
    evaluate.add_argument("--seed", type=int, default=1, help="seed for sampled queries (default: 1)")
    evaluate.add_argument("--json", action="store_true", help="print the figures as JSON")
    _model_args(evaluate)
    evaluate.set_defaults(run=run_eval)

    remove = actions.add_parser("rm", help="delete gists")
    remove.add_argument("ids", nargs="+", metavar="ID")
    _store_arg(remove)
    remove.set_defaults(run=run_rm)
    parser.set_defaults(run=lambda _args: parser.print_help() or 2)


def _store_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir", help="state folder (default: PROMPTFOLD_DATA_DIR or ~/.local/share/promptfold)"
    )


def _model_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", help="model alias or HF folder (default: the packaged SmolLM2)")
    parser.add_argument("--device", help="torch device: cpu, cuda (default: cuda when present, else cpu)")
    _store_arg(parser)


def _store(args: argparse.Namespace) -> Any:
    from middleware.compress.gist.store import GistStore

    from ..config import Settings

    root = Path(args.data_dir).expanduser() if args.data_dir else Settings().data_dir
    return GistStore(root / "gists")


def _open_backend(args: argparse.Namespace) -> Any:
    import torch

    from backend import open_backend
    from backend.models import ModelNotFound

    from . import CliError

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return open_backend("local", model=args.model, device=device)
    except ModelNotFound as error:
        raise CliError(str(error)) from error


def run_train(args: argparse.Namespace) -> int:
    from middleware.compress.gist.data import read_queries
    from middleware.compress.gist.distill import TrainConfig
    from middleware.compress.gist.errors import GistError
    from middleware.compress.gist.prefix import PrefixSpec
    from middleware.compress.gist.train import GistJob, make_gist

    from . import CliError

    try:
        text = Path(args.prefix_file).read_text(encoding="utf-8")
    except OSError as error:
        raise CliError(f"cannot read the prefix file '{args.prefix_file}': {error.strerror}") from error
    config = TrainConfig(
        tokens=args.tokens,
        max_steps=args.steps,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        seed=args.seed,
    )
    store = _store(args)

    async def main() -> Any:
        queries = read_queries(args.queries) if args.queries else None
        job = GistJob(
            PrefixSpec(text, args.role),
            config,
            queries=queries,
            num_queries=args.num_queries,
            max_answer_tokens=args.max_answer_tokens,
        )
        backend = _open_backend(args)
        try:
            from middleware.compress.gist.prefix import check_gist_size, frame_prefix
            from middleware.compress.gist.train import prepare

            check_gist_size(len(frame_prefix(job.prefix, backend)), config.tokens)  # before any work
            _say("gathering queries and the model's answers ...")
            prepared = await prepare(backend, job)
            _say(
                f"prefix: {len(prepared.prefix)} tokens; queries: {len(prepared.train)} to train on, "
                f"{len(prepared.heldout)} held out ({prepared.query_source}, {prepared.seconds:.0f} s)"
            )
            with _ProgressBar(config.max_steps) as bar:
                return await make_gist(backend, job, prepared=prepared, progress=bar.update)
        finally:
            await backend.close()

    try:
        gist = asyncio.run(main())
    except GistError as error:
        raise CliError(error.message) from error
    record = store.save(gist)
    _print_summary(record)
    return 0


def run_list(args: argparse.Namespace) -> int:
    records = _store(args).records()
    if args.json:
        print(json.dumps([r.model_dump() for r in records], indent=2))
        return 0
    if not records:
        print(f"no gists in {_store(args).root}")
        return 0
    for r in records:  # plain lines: ids must never be cut to fit a narrow terminal
        figures = r.eval
        agreement = f"agreement {figures.next_token_agreement:.1%}" if figures else "not evaluated"
        print(
            f"{r.id}  {r.model_id}  {r.prefix_role} prefix {r.prefix_tokens} -> {r.tokens} tokens "
            f"({r.compression:.0f}x fewer)  {agreement}  {r.created}"
        )
    return 0


def run_show(args: argparse.Namespace) -> int:
    from middleware.compress.gist.errors import GistError

    from . import CliError

    try:
        print(_store(args).record(args.id).model_dump_json(indent=2))
    except GistError as error:
        raise CliError(error.message) from error
    return 0


def run_rm(args: argparse.Namespace) -> int:
    from middleware.compress.gist.errors import GistError

    from . import CliError

    store = _store(args)
    for gist_id in args.ids:
        try:
            store.delete(gist_id)
        except GistError as error:
            raise CliError(error.message) from error
        print(f"deleted {gist_id}")
    return 0


def run_eval(args: argparse.Namespace) -> int:
    from middleware.compress.gist.errors import GistError

    from . import CliError

    try:
        figures = asyncio.run(_evaluate(args))
    except GistError as error:
        raise CliError(error.message) from error
    if args.json:
        print(json.dumps({name: f.model_dump() for name, f in figures.items()}, indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table("prompt", "KL (nats/token)", "next-token agreement", "all positions", "answers equal")
    for name, f in figures.items():
        equal = "-" if f.answers_equal is None else f"{f.answers_equal:.0%}"
        every = "-" if name == DROPPED else f"{f.all_positions_agreement:.1%}"
        table.add_row(name, f"{f.kl:.3f}", f"{f.next_token_agreement:.1%}", every, equal)
    Console().print(table)
    return 0


async def _evaluate(args: argparse.Namespace) -> dict[str, Any]:
    """The gist against the full prefix on held-out queries, with the dropped-prefix baseline."""
    from middleware.compress.gist.data import build_examples, read_queries, sample_queries
    from middleware.compress.gist.evaluate import (
        dropped_prefix_answers_agreement,
        dropped_prefix_fidelity,
        evaluate_gist,
    )
    from middleware.compress.gist.model import serving_model
    from middleware.compress.gist.prefix import FramedPrefix, PrefixSpec
    from middleware.compress.gist.train import training_model

    gist = _store(args).load(args.id)
    record = gist.record
    backend = _open_backend(args)
    try:
        serving = await serving_model(backend)
        record.check_model(serving.fingerprint, serving.model_id)
        prefix = FramedPrefix(PrefixSpec(record.prefix_text, record.prefix_role), tuple(gist.prefix_ids))
        if args.queries:
            queries = read_queries(args.queries)
        else:
            queries = await sample_queries(backend, prefix, args.num_queries, seed=args.seed)
        examples = await build_examples(backend, prefix, queries, max_answer_tokens=args.max_answer_tokens)
        model = await training_model(serving, backend)
        with_gist = await evaluate_gist(
            backend, serving, model, prefix.token_ids, gist.vectors, examples, args.max_answer_tokens
        )
        dropped = await asyncio.to_thread(dropped_prefix_fidelity, model, backend, prefix, examples)
        dropped.answers_equal = await dropped_prefix_answers_agreement(
            backend, examples, args.max_answer_tokens
        )
    finally:
        await backend.close()
    return {f"gist k={record.tokens}": with_gist, DROPPED: dropped}


def _say(line: str) -> None:
    print(f"promptfold: {line}", file=sys.stderr, flush=True)


def _print_summary(record: Any) -> None:
    figures = record.eval
    print(f"stored gist {record.id}")
    print(
        f"  prefix {record.prefix_tokens} tokens -> {record.tokens} vectors ({record.compression:.0f}x fewer); "
        f"trained {record.training.get('steps_run')} steps in {record.training.get('seconds', 0) / 60:.1f} min "
        f"on {record.training.get('device')}"
    )
    if figures:
        print(
            f"  held out ({figures.queries} queries): KL {figures.kl:.3f} nats/token, next-token agreement "
            f"{figures.next_token_agreement:.1%}, greedy answers equal {figures.answers_equal:.0%}"
        )


class _ProgressBar:
    """A rich progress bar on stderr: step, training loss and the best held-out loss."""

    def __init__(self, total: int) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.progress = Progress(
            TextColumn("training"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[losses]}"),
            console=Console(stderr=True),
        )
        self.task = self.progress.add_task("train", total=total, losses="")

    def __enter__(self) -> _ProgressBar:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def update(self, state: Any) -> None:
        train = "-" if state.train_loss is None else f"{state.train_loss:.3f}"
        losses = f"loss {train}  held-out best {state.best_loss:.3f}"
        self.progress.update(self.task, completed=state.step, losses=losses)
