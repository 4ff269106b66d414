"""`promptfold serve`: run the OpenAI-compatible proxy."""

from __future__ import annotations

import argparse
from typing import Any

HELP = "run the OpenAI-compatible proxy"
DESCRIPTION = """\
Run the proxy. Clients use it like the OpenAI API: base_url http://HOST:PORT/v1, model "default".
Settings come from flags, then PROMPTFOLD_* environment variables, then a TOML file (--config).
"""
EPILOG = """\
backends:
  local                      the embedded engine with the packaged SmolLM2-135M-Instruct (CPU)
  local:/path/to/hf-folder   the embedded engine with another causal LM
  sglang://HOST:PORT         a running SGLang server (start one: promptfold backend sglang)
  openai://HOST:PORT/v1      any OpenAI-compatible server (vLLM, transformers serve)
  openai+https://HOST/v1     a hosted API (key: --backend-api-key or PROMPTFOLD_BACKEND_API_KEY)

examples:
  promptfold serve --port 8000
  PROMPTFOLD_API_KEY=secret promptfold serve --backend sglang://127.0.0.1:30000
  curl -s localhost:8000/v1/chat/completions -H 'content-type: application/json' \\
       -d '{"model": "default", "messages": [{"role": "user", "content": "What is 2+2?"}]}'
"""


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "serve",
        help=HELP,
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--backend", help="where answers come from (default: local)")
    parser.add_argument("--model", help="local engine: model alias or HF folder (default: SmolLM2)")
    parser.add_argument(
        "--device",
        help="torch device of the local engine and the compression scorer: cpu or cuda (default: cpu)",
    )
    parser.add_argument("--host", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on (default: 8000)")
    parser.add_argument("--api-key", help="require clients to send this key (default: none)")
    parser.add_argument("--backend-api-key", help="key for an OpenAI-compatible backend")
    parser.add_argument("--tokenizer", help="remote backends: local tokenizer folder for chat templates")
    parser.add_argument("--max-body-bytes", type=int, help="largest request body accepted (default: 8 MiB)")
    parser.add_argument(
        "--max-prompt-tokens", type=int, help="largest prompt of chat, completions, gists (default: 32768)"
    )
    parser.add_argument(
        "--max-compress-tokens", type=int, help="largest text compression takes, tokens (default: 16384)"
    )
    parser.add_argument(
        "--backend-timeout", type=float, help="remote backends: seconds of silence tolerated (default: 120)"
    )
    parser.add_argument(
        "--body-timeout", type=float, help="seconds for a request body to arrive (default: 10)"
    )
    parser.add_argument(
        "--compress-workers", type=int, help="threads for compression's CPU steps (default: 2)"
    )
    parser.add_argument(
        "--compress-cache-mb", type=int, help="memory for cached compressions, 0 = off (default: 64)"
    )
    parser.add_argument(
        "--compress-scorer",
        choices=["auto", "local", "backend", "classifier"],
        help="scorer of compress requests that name none (default: auto)",
    )
    parser.add_argument("--config", help="TOML file with settings (same names as the flags, snake_case)")
    parser.add_argument("--log-level", choices=["debug", "info", "warning", "error"], help="(default: info)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import logging

    import uvicorn
    from pydantic import ValidationError

    from backend import open_backend
    from backend.models import ModelNotFound

    from ..config import load_settings
    from ..server import create_app
    from . import CliError, explain_settings_error

    try:
        settings = load_settings(
            args.config,
            backend=args.backend,
            model=args.model,
            device=args.device,
            host=args.host,
            port=args.port,
            api_key=args.api_key,
            backend_api_key=args.backend_api_key,
            tokenizer=args.tokenizer,
            max_body_bytes=args.max_body_bytes,
            max_prompt_tokens=args.max_prompt_tokens,
            max_compress_tokens=args.max_compress_tokens,
            backend_timeout_s=args.backend_timeout,
            body_timeout_s=args.body_timeout,
            compress_workers=args.compress_workers,
            compress_cache_mb=args.compress_cache_mb,
            compress_scorer=args.compress_scorer,
            log_level=args.log_level,
        )
    except (ValidationError, FileNotFoundError, ValueError) as error:
        raise CliError(explain_settings_error(error)) from error
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    print(f"promptfold: opening backend {settings.backend} ...", flush=True)
    try:
        backend = open_backend(settings.backend, **settings.backend_options())
    except ModelNotFound as error:
        raise CliError(str(error)) from error
    print(
        f"promptfold: serving {backend.model_id} ({backend.name}); "
        f"OpenAI API at http://{settings.host}:{settings.port}/v1",
        flush=True,
    )
    app = create_app(settings, backend=backend, owns_backend=True)
    try:
        uvicorn.run(app, host=settings.host, port=settings.port, log_level=settings.log_level)
    except SystemExit as error:  # uvicorn exits when the lifespan (opening the backend) fails
        raise CliError("the server could not start (see the message above)") from error
    return 0
