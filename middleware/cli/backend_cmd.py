"""`promptfold backend sglang`: start an SGLang server with sensible defaults and wait until healthy."""

from __future__ import annotations

import argparse
from typing import Any

HELP = "start a model server (SGLang) for the proxy to use"
EPILOG = """\
examples (on a GPU machine with `pip install 'promptfold[sglang]'`):
  promptfold backend sglang --model /models/SmolLM2-135M-Instruct --port 30000
  promptfold backend sglang --model /models/smollm2 -- --disable-radix-cache --mem-fraction-static 0.3
then, in another shell:
  promptfold serve --backend sglang://127.0.0.1:30000

Everything after `--` goes to `python -m sglang.launch_server` unchanged.
"""


def register(commands: Any) -> None:
    parser = commands.add_parser("backend", help=HELP, description=HELP)
    kinds = parser.add_subparsers(dest="backend_kind", metavar="KIND")
    sglang = kinds.add_parser(
        "sglang",
        help="start `python -m sglang.launch_server` and wait until it answers",
        description="Start an SGLang server and wait until /health_generate answers; Ctrl-C stops it.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sglang.add_argument("--model", required=True, help="HF model folder (or hub id, if the machine has one)")
    sglang.add_argument("--port", type=int, default=30000, help="server port (default: 30000)")
    sglang.add_argument("--host", default="127.0.0.1", help="server address (default: 127.0.0.1)")
    sglang.add_argument("--wait", type=float, default=600, help="seconds to wait for health (default: 600)")
    sglang.add_argument("--log", help="file for the server's log (default: sglang-PORT.log)")
    sglang.add_argument(
        "extra", nargs=argparse.REMAINDER, help="-- then extra flags for sglang.launch_server"
    )
    sglang.set_defaults(run=run_sglang)
    parser.set_defaults(run=lambda _args: parser.print_help() or 2)


def run_sglang(args: argparse.Namespace) -> int:
    from pathlib import Path

    from backend.sglang_launcher import LaunchError, launch_sglang, serve_until_interrupted

    from . import CliError

    extra = [a for a in args.extra if a != "--"] if args.extra else []
    log_path = Path(args.log or f"sglang-{args.port}.log")
    try:
        process = launch_sglang(
            args.model, port=args.port, host=args.host, extra_args=extra, wait_s=args.wait, log_path=log_path
        )
    except LaunchError as error:
        raise CliError(str(error)) from error
    print(
        f"promptfold: SGLang is healthy at http://{args.host}:{args.port} (log: {log_path}); Ctrl-C stops it"
    )
    print(f"promptfold: next: promptfold serve --backend sglang://{args.host}:{args.port}")
    return serve_until_interrupted(process)
