"""The `promptfold` command. Each subcommand lives in its own module and imports heavy things only
when it runs, so `promptfold --help` answers at once."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import backend_cmd, batch_cmd, compress_cmd, corpus_cmd, gist_cmd, scorer_cmd, serve

DESCRIPTION = """\
promptfold: an OpenAI-compatible proxy that folds prompts (pruning, retrieval, gists) and unfolds
answers (skeleton-of-thought), in front of SGLang, any OpenAI-compatible server, or a small model
running in-process on the CPU.
"""

EPILOG = """\
examples:
  promptfold serve                                   # proxy on :8000 with the embedded SmolLM2 (CPU)
  promptfold serve --backend sglang://127.0.0.1:30000
  promptfold backend sglang --model /models/smollm2 --port 30000 -- --disable-radix-cache

then point any OpenAI client at http://127.0.0.1:8000/v1 (model "default").
run `promptfold COMMAND --help` for the options of a command.
"""

COMMANDS = (serve, backend_cmd, corpus_cmd, compress_cmd, gist_cmd, batch_cmd, scorer_cmd)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="promptfold",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version="promptfold 0.1.0")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMANDS:
        module.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    try:
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        return 130
    except CliError as error:
        print(f"promptfold: error: {error}", file=sys.stderr)
        return 2


class CliError(Exception):
    """A problem the user can fix; printed as one line, without a traceback."""


def explain_settings_error(error: Exception) -> str:
    """One line per bad setting, from a pydantic ValidationError or a plain error."""
    errors = getattr(error, "errors", None)
    if not callable(errors):
        return str(error)
    lines = []
    for item in errors():
        name = ".".join(str(p) for p in item.get("loc", ())) or "settings"
        message = str(item.get("msg", "invalid")).removeprefix("Value error, ")
        lines.append(f"{name}: {message}")
    return "; ".join(lines)
