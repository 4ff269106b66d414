"""Shared fixtures: one embedded engine per test session, and the real proxy started by its own CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from middleware.server.background import free_port, serve_in_thread, wait_healthy

ROOT = Path(__file__).resolve().parents[1]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--backend",
        default=os.environ.get("PROMPTFOLD_CONTRACT_BACKEND", "local"),
        help="backend spec the contract suite runs against (local, sglang://HOST:PORT, ...)",
    )
    parser.addoption(
        "--embeds-backend",
        default=os.environ.get("PROMPTFOLD_CONTRACT_EMBEDS_BACKEND"),
        help="a second backend for input-embeddings checks (SGLang needs --disable-radix-cache for them)",
    )
    parser.addoption(
        "--conformance-report",
        default=os.environ.get("PROMPTFOLD_CONFORMANCE_REPORT"),
        help="tests/conformance: write the summary to PATH.json and PATH.md",
    )


@pytest.fixture(scope="session")
def local_backend():
    """The embedded engine with the packaged SmolLM2, shared by every test that needs a model in-process."""
    from backend.local import LocalBackend

    backend = LocalBackend()
    yield backend
    backend.engine.stop()


@contextmanager
def run_proxy(*args: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """`promptfold serve` in a subprocess on a free port; yields its base URL (…/v1)."""
    port = free_port()
    log = (ROOT / "tests" / f".proxy-{port}.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "middleware.cli", "serve", "--port", str(port), *args],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, **(env or {})},
    )
    try:
        try:
            wait_healthy(f"http://127.0.0.1:{port}/health", alive=lambda: process.poll() is None)
        except (RuntimeError, TimeoutError) as error:
            log.flush()
            raise RuntimeError(f"{error}; its log:\n{Path(log.name).read_text()[-3000:]}") from error
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
        Path(log.name).unlink(missing_ok=True)


@pytest.fixture(scope="session")
def proxy_url() -> Iterator[str]:
    """The real proxy process on the embedded engine, started through the CLI."""
    with run_proxy("--backend", "local") as url:
        yield url


serve_app_in_thread = serve_in_thread  # tests read better with the longer name
