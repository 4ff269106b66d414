"""What the fault suite shares: the proxy on the session's embedded engine, served in a thread with a data
folder of its own, and a plain HTTP client for it (no retries: a fault must show, not be papered over).

The suite runs a sample in CI (`make test`); `PROMPTFOLD_FAULTS_FULL=1 python -m pytest tests/faults` runs
every case at full size (1,000 fuzzed requests, every probe), see `bench/results/faults.md`."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from middleware.config import Settings
from middleware.server import create_app
from middleware.server.background import free_port

from ..conftest import serve_app_in_thread

_APPS: dict[str, Any] = {}  # base URL -> the app served there (tests reach its state to inject faults)
FULL = os.environ.get("PROMPTFOLD_FAULTS_FULL", "").lower() in ("1", "true", "yes")


def full_or(sample: int, full: int) -> int:
    """`full` when the whole suite is asked for (PROMPTFOLD_FAULTS_FULL=1), else the CI sample `sample`."""
    return full if FULL else sample


def serve_proxy(backend: object, data_dir: Path, **settings: object) -> Iterator[str]:
    """The proxy app on `backend` with `settings`, in a thread; yields its base URL (without /v1)."""
    app = create_app(Settings(data_dir=data_dir, **settings), backend=backend)  # type: ignore[arg-type]
    with serve_app_in_thread(app) as url:
        _APPS[url] = app
        try:
            yield url
        finally:
            _APPS.pop(url, None)


@contextmanager
def serve_unhealthy(settings: Settings) -> Iterator[str]:
    """The proxy on `settings.backend` (opened by the app) in a thread, up as soon as it answers at all:
    a broken backend keeps /health at 503, which `serve_app_in_thread` would wait out."""
    import threading

    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "the proxy did not start"
            time.sleep(0.05)
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def app_state(url: str) -> Any:
    """The ServerState of the app served at `url` by `serve_proxy`."""
    return _APPS[url].state.promptfold


@pytest.fixture(scope="module")
def proxy(local_backend: object, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The proxy on the embedded engine, default settings, its own data folder (one per test module)."""
    yield from serve_proxy(local_backend, tmp_path_factory.mktemp("data"))


@pytest.fixture()
def client(proxy: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=proxy, timeout=60) as http:
        yield http
