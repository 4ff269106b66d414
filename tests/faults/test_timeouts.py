"""Backends that misbehave (FAKE servers from `fake_backends.py`: dead, silent, speaking garbage) and
clients that drip their body: every case ends in a bounded time with the status the README gives, set by
`backend_timeout_s`, `backend_connect_timeout_s` and `body_timeout_s`."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack

import httpx
import pytest

from middleware.config import Settings

from .conftest import serve_proxy, serve_unhealthy
from .fake_backends import dead_backend, fake_backend

CHAT = {"model": "default", "max_tokens": 4, "messages": [{"role": "user", "content": "hi"}]}
QUICK = {"backend_timeout_s": 1.0, "backend_connect_timeout_s": 1.0}


@pytest.mark.parametrize(
    ("mode", "status"),
    [("silent", 503), ("garbage", 502), ("not_json", 502), ("hangs_up", 502), ("dead", 503)],
)
def test_a_misbehaving_backend_fails_chat_fast_with_its_status(tmp_path, mode: str, status: int) -> None:
    with ExitStack() as stack:
        spec = stack.enter_context(fake_backend(mode)) if mode != "dead" else dead_backend()
        url = stack.enter_context(serve_unhealthy(Settings(backend=spec, data_dir=tmp_path, **QUICK)))
        httpx.post(f"{url}/v1/chat/completions", json=CHAT, timeout=60)  # first use loads a tokenizer
        for stream in (False, True):
            started = time.monotonic()
            response = httpx.post(f"{url}/v1/chat/completions", json={**CHAT, "stream": stream}, timeout=30)
            assert time.monotonic() - started < 4, f"{mode} held the client"
            assert response.status_code == status, response.text
            assert response.json()["error"]["type"] == "server_error"


def test_health_reports_a_silent_backend(tmp_path) -> None:
    with (
        fake_backend("silent") as spec,
        serve_unhealthy(Settings(backend=spec, data_dir=tmp_path, **QUICK)) as url,
    ):
        started = time.monotonic()
        assert httpx.get(f"{url}/health", timeout=30).status_code == 503
        assert time.monotonic() - started < 6


# --- slow request bodies ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def impatient(local_backend: object, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from serve_proxy(local_backend, tmp_path_factory.mktemp("impatient"), body_timeout_s=1.0)


def _drip(url: str, results: list[tuple[int, str, float]], *, seconds: float = 5.0) -> None:
    """Declare a 1,000-byte body and send it a byte every 0.25 s; record (status, connection, time)."""
    host, port = url.removeprefix("http://").split(":")
    started = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        head = b"POST /v1/chat/completions HTTP/1.1\r\nHost: p\r\nContent-Type: application/json\r\n"
        sock.sendall(head + b"Content-Length: 1000\r\n\r\n")
        sock.settimeout(0.25)
        answer = b""
        while time.monotonic() - started < seconds:
            try:
                sock.sendall(b" ")
                answer += sock.recv(65536)
                if b"\r\n\r\n" in answer:
                    break
            except TimeoutError:
                continue
            except OSError:
                break
    lines = answer.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1]) if lines[0] else 0
    connection = next(
        (line.split(":", 1)[1].strip() for line in lines if line.lower().startswith("connection:")), ""
    )
    results.append((status, connection, time.monotonic() - started))


def test_a_slow_drip_body_is_a_408_that_closes_the_connection(impatient: str) -> None:
    results: list[tuple[int, str, float]] = []
    _drip(impatient, results)
    status, connection, seconds = results[0]
    assert status == 408
    assert connection.lower() == "close"
    assert seconds < 3


def test_forty_slow_drips_are_all_cut_and_health_stays_fast(impatient: str) -> None:
    results: list[tuple[int, str, float]] = []
    threads = [threading.Thread(target=_drip, args=(impatient, results)) for _ in range(40)]
    for thread in threads:
        thread.start()
    time.sleep(0.3)
    started = time.monotonic()
    assert httpx.get(f"{impatient}/health", timeout=10).status_code == 200
    health_s = time.monotonic() - started
    for thread in threads:
        thread.join()
    assert sorted({status for status, _, _ in results}) == [408]
    assert max(seconds for _, _, seconds in results) < 4
    assert health_s < 1.0
