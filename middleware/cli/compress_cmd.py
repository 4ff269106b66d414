"""`promptfold compress`: prune a prompt file (or stdin) to a rate or a token target."""

from __future__ import annotations

import argparse
import sys
from typing import Any

HELP = "compress a prompt (LLMLingua-style token pruning)"
DESCRIPTION = """\
Compress a text file (or - for stdin) and print the compressed text. Numbers, code, JSON structure,
URLs and IDs are never cut; <keep>...</keep> regions stay verbatim and <compress rate=R>...</compress>
regions get their own rate. With --question the passages most relevant to it are kept (LongLLMLingua).
Tokens are counted with the scoring model's tokenizer (SmolLM2 by default).
"""
EPILOG = """\
examples:
  promptfold compress prompt.txt --rate 0.4
  cat docs.txt | promptfold compress - --target-tokens 500 --question "Who founded the company?"
  promptfold compress prompt.txt --rate 0.3 --json --annotate
"""


def _rate(value: str) -> float:
    try:
        rate = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{value}' is not a number") from None
    if not 0 < rate <= 1:
        raise argparse.ArgumentTypeError(f"the rate must be in (0, 1], got {value}")
    return rate


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{value}' is not a whole number") from None
    if number <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return number


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "compress",
        help=HELP,
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("file", metavar="FILE", help="the text to compress, or - for stdin")
    parser.add_argument("--rate", type=_rate, help="compressed / original tokens, in (0, 1] (default: 0.5)")
    parser.add_argument("--target-tokens", type=_positive, help="tokens wanted (wins over --rate)")
    parser.add_argument("--question", help="keep what answers this question (question-aware mode)")
    parser.add_argument(
        "--mode", choices=["plain", "question_aware"], help="default: question_aware with --question"
    )
    parser.add_argument("--instruction", help="text kept verbatim before the compressed text")
    parser.add_argument("--model", help="scoring model: alias or HF folder (default: the packaged SmolLM2)")
    parser.add_argument(
        "--scorer",
        choices=["local", "classifier"],
        help="local: the causal LM (default); classifier: the small distilled encoder, much faster",
    )
    parser.add_argument(
        "--json", action="store_true", help="print a JSON object: text, tokens, ratio, timings"
    )
    parser.add_argument(
        "--annotate", action="store_true", help="show the original with dropped runs as [-...-]"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import asyncio
    import json

    from backend import UserError
    from backend.models import ModelNotFound

    from ..compress.service import CompressionService
    from ..options import request_options
    from . import CliError

    text = _read(args.file)
    flags = {"rate": args.rate, "target_tokens": args.target_tokens, "question": args.question}
    flags |= {"mode": args.mode, "instruction": args.instruction, "scorer": args.scorer}
    try:
        options = request_options({"compress": {k: v for k, v in flags.items() if v is not None}}, where=None)
        assert options.compress is not None  # an object of flags always asks for compression
        service = CompressionService(model=args.model)
        result = asyncio.run(service.compress(options.compress, text=text))
    except (UserError, ModelNotFound) as error:
        raise CliError(str(error)) from error
    if args.json:
        data = {"text": result.text, **result.as_dict(annotated=args.annotate)}
        print(json.dumps(data, ensure_ascii=False, indent=1))
        return 0
    print(result.annotated() if args.annotate else result.text)
    print(
        f"promptfold: {result.original_tokens} -> {result.compressed_tokens} tokens "
        f"(ratio {result.ratio:.3f}, target {result.target_tokens}) in {sum(result.timings.values()):.2f}s",
        file=sys.stderr,
    )
    for note in result.notes:
        print(f"promptfold: note: {note}", file=sys.stderr)
    return 0


def _read(name: str) -> str:
    from . import CliError

    try:
        data = sys.stdin.buffer.read() if name == "-" else open(name, "rb").read()  # noqa: SIM115
    except OSError as error:
        raise CliError(f"cannot read '{name}': {error.strerror}") from error
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise CliError(f"'{name}' is not UTF-8 text") from None
    if "\x00" in text:
        raise CliError(f"'{name}' is not text (it holds NUL bytes)")
    if not text.strip():
        raise CliError(f"'{name}' is empty: there is nothing to compress")
    return text
