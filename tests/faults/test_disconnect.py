"""A client that leaves stops its work: the request's task is cancelled as soon as the disconnect is seen
(guards.py), so no further compression step, scoring call or generation runs for nobody. A scoring call
already on a worker thread stops between its forwards and between decoder layers once no caller wants its
scores, which frees the CPU within a second."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import httpx
import pytest

from .conftest import app_state

README_TEXT = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_a_client_leaving_mid_compression_stops_its_steps(
    proxy: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Compression's shape (CPU steps one after another on the service's pool), with 0.2 s steps."""
    service = app_state(proxy).compression
    steps: list[float] = []

    async def stepwise(*args: object, **kwargs: object) -> None:
        for _ in range(100):
            await service.offload(time.sleep, 0.2)
            steps.append(time.monotonic())

    monkeypatch.setattr(service, "compress", stepwise)
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{proxy}/v1/compress", json={"prompt": "some text to compress"}, timeout=1.0)
    left = time.monotonic()
    time.sleep(1.5)
    assert 2 <= len(steps) < 10
    assert steps[-1] - left < 0.5  # the step running at the disconnect was the last one


def _cpu_busy(seconds: float) -> float:
    """Share of one core this process used over the next `seconds` (the proxy runs in a thread here)."""
    cpu, wall = time.process_time(), time.monotonic()
    time.sleep(seconds)
    return (time.process_time() - cpu) / (time.monotonic() - wall)


@pytest.mark.slow
def test_killing_a_client_mid_compression_frees_the_cpu_within_a_second(proxy: str) -> None:
    warm = {"prompt": README_TEXT[:400], "compress": {"rate": 0.5}}
    assert httpx.post(f"{proxy}/v1/compress", json=warm, timeout=600).status_code == 200  # models loaded
    body = json.dumps({"prompt": README_TEXT[:16000], "compress": {"rate": 0.3}}).encode()  # ~4k tokens
    host, port = proxy.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as sock:
        head = "POST /v1/compress HTTP/1.1\r\nHost: p\r\nContent-Type: application/json\r\n"
        sock.sendall(head.encode() + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        deadline = time.monotonic() + 60
        while _cpu_busy(0.5) < 0.5:  # until the scoring forwards run
            assert time.monotonic() < deadline, "the compression never got busy"
    # the client is gone (socket closed)
    time.sleep(1.0)  # the second the CPU has to come free
    busy = _cpu_busy(1.0)
    assert busy < 0.3, f"the process still used {busy:.0%} of a core 1 s after the client left"
