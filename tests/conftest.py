"""Shared fixtures: one embedded engine per test session, and the real proxy started by its own CLI."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_healthy(url: str, timeout_s: float = 180, process: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before it was healthy")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise TimeoutError(f"{url} not healthy after {timeout_s} s")


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
            wait_healthy(f"http://127.0.0.1:{port}/health", process=process)
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


@contextmanager
def serve_app_in_thread(app) -> Iterator[str]:
    """Run an ASGI app with uvicorn in a background thread on a free port; yields its base URL."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_healthy(f"http://127.0.0.1:{port}/health", timeout_s=60)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def run_async(coroutine):
    return asyncio.run(coroutine)
