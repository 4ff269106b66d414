"""Counters that count every route (compress, corpora, gists, an unknown path, a 413 included), an
in-flight gauge that moves, and requests whose client went away counted as 499, not 200."""

from __future__ import annotations

import asyncio
import re
import socket
import threading
import time

import httpx
import pytest

from .conftest import app_state

CHAT = {"model": "default", "max_tokens": 2, "messages": [{"role": "user", "content": "hi"}]}


def count(client: httpx.Client, route: str, status: int) -> float:
    text = client.get("/metrics").text
    found = re.search(rf'promptfold_requests_total{{route="{route}",status="{status}"}} (\S+)', text)
    return float(found.group(1)) if found else 0.0


def in_flight(client: httpx.Client) -> float:
    found = re.search(r"^promptfold_requests_in_flight (\S+)$", client.get("/metrics").text, re.MULTILINE)
    assert found is not None
    return float(found.group(1))


@pytest.mark.parametrize(
    ("method", "path", "body", "route", "status"),
    [
        ("POST", "/v1/compress", {"prompt": ""}, "compress", 400),
        ("GET", "/v1/corpora", None, "corpora", 200),
        ("GET", "/v1/corpora/nope", None, "corpora", 404),
        ("GET", "/v1/gists", None, "gists", 200),
        ("GET", "/v1/models", None, "models", 200),
        ("GET", "/no/such/path", None, "other", 404),
        ("GET", "/health", None, "health", 200),
        ("POST", "/v1/chat/completions", {"messages": "x" * (9 * 2**20)}, "chat", 413),
    ],
)
def test_every_route_is_counted(
    client: httpx.Client, method: str, path: str, body: object, route: str, status: int
) -> None:
    before = count(client, route, status)
    assert client.request(method, path, json=body).status_code == status
    assert count(client, route, status) == before + 1


def test_the_in_flight_gauge_counts_requests_being_served(
    client: httpx.Client, proxy: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def slow(*args: object, **kwargs: object) -> None:
        await asyncio.sleep(3)
        raise RuntimeError("never mind")

    monkeypatch.setattr(app_state(proxy).pipeline, "complete", slow)
    threads = [
        threading.Thread(
            target=httpx.post, args=(f"{proxy}/v1/chat/completions",), kwargs={"json": CHAT, "timeout": 30}
        )
        for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    time.sleep(1)
    assert in_flight(client) >= 4  # three slow chats and this /metrics
    for thread in threads:
        thread.join()
    assert in_flight(client) == 1  # this /metrics


def test_a_disconnected_client_cancels_its_work_and_counts_as_499(
    client: httpx.Client, proxy: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    cancelled = threading.Event()

    async def long_work(*args: object, **kwargs: object) -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    monkeypatch.setattr(app_state(proxy).pipeline, "complete", long_work)
    before = count(client, "chat", 499)
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{proxy}/v1/chat/completions", json=CHAT, timeout=0.5)  # gives up, closes its socket
    left = time.monotonic()
    assert cancelled.wait(timeout=5)
    assert time.monotonic() - left < 1.0
    time.sleep(0.2)
    assert count(client, "chat", 499) == before + 1


def test_an_abandoned_stream_counts_as_499(client: httpx.Client, proxy: str) -> None:
    before = count(client, "chat", 499)
    body = {**CHAT, "max_tokens": 200, "stream": True, "temperature": 1.0}
    with httpx.stream("POST", f"{proxy}/v1/chat/completions", json=body, timeout=60) as response:
        assert response.status_code == 200
        next(response.iter_lines())  # the first event, then go away
    deadline = time.monotonic() + 10
    while count(client, "chat", 499) == before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert count(client, "chat", 499) == before + 1
    # The engine drops the cancelled row at its next step; a chat served after it proves it did, before
    # this module's proxy (and its event loop) goes away under the session's shared engine.
    assert client.post("/v1/chat/completions", json=CHAT).status_code == 200


def test_a_client_that_leaves_mid_body_counts_as_499(client: httpx.Client, proxy: str) -> None:
    before = count(client, "compress", 499)
    host, port = proxy.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as sock:
        head = b"POST /v1/compress HTTP/1.1\r\nHost: p\r\nContent-Type: application/json\r\n"
        sock.sendall(head + b'Content-Length: 100\r\n\r\n{"prompt": ')
        time.sleep(0.3)
    deadline = time.monotonic() + 5
    while count(client, "compress", 499) == before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert count(client, "compress", 499) == before + 1
