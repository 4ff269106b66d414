"""Input a client can send that used to be a 500: lone surrogates, JSON nested 1,000 deep, non-standard
JSON. Each is a 400 naming what is wrong; and a 500 that does happen (a bug) leaves a pooled keep-alive
connection usable, or says `Connection: close` when it is not."""

from __future__ import annotations

import socket

import httpx
import pytest

CHAT = "/v1/chat/completions"
JSON = {"content-type": "application/json"}


def chat_with(content: str) -> bytes:
    return (
        '{"model": "default", "max_tokens": 2, "messages": [{"role": "user", "content": "' + content + '"}]}'
    ).encode()


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (CHAT, chat_with("hi \\ud800 there")),
        (CHAT, chat_with("\\udfff")),
        ("/v1/completions", b'{"model": "default", "max_tokens": 2, "prompt": "a\\ud800b"}'),
        ("/v1/compress", b'{"prompt": "a long prompt \\ud800 to compress", "compress": {"rate": 0.5}}'),
        ("/v1/corpora", b'{"name": "\\ud800"}'),
    ],
)
def test_a_lone_surrogate_is_a_400_naming_the_field(client: httpx.Client, path: str, body: bytes) -> None:
    response = client.post(path, content=body, headers=JSON)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_unicode"
    assert "surrogate" in error["message"]


def test_an_escaped_surrogate_pair_is_ordinary_text(client: httpx.Client) -> None:
    response = client.post(CHAT, content=chat_with("smile \\ud83d\\ude00"), headers=JSON)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("depth", [65, 1000, 100_000])
def test_deeply_nested_json_is_a_400(client: httpx.Client, depth: int) -> None:
    body = b'{"model": "default", "messages": [], "promptfold": ' + b"[" * depth + b"]" * depth + b"}"
    response = client.post(CHAT, content=body, headers=JSON)
    assert response.status_code == 400, response.text
    assert "nested too deeply" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    "body",
    [
        b'{"model": "default", "max_tokens": NaN, "messages": []}',
        b'{"model": "default", "temperature": Infinity, "messages": []}',
        b'{"model": "default", "max_tokens": 1' + b"0" * 5000 + b', "messages": []}',
        b'{"model": "default", "messages": [{"role": "user", "content": "\xff\xfe"}]}',
        b"",
        b"[]",
    ],
)
def test_non_standard_json_is_a_400(client: httpx.Client, body: bytes) -> None:
    response = client.post(CHAT, content=body, headers=JSON)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_json"


# --- keep-alive after an error -----------------------------------------------------------------------


def _request(method: str, path: str, body: bytes = b"") -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: proxy\r\nContent-Type: application/json\r\n"
    return (head + f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def _read_response(sock: socket.socket) -> tuple[int, dict[str, str]]:
    """Status and headers of one response, its body read to the end (Content-Length); (0, {}) if closed."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return 0, {}
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    return int(lines[0].split()[1]), headers


def _second_request_after(proxy: str, first: bytes) -> tuple[int, dict[str, str], int]:
    """Send `first` then GET /health on the same connection: (first status, its headers, second status);
    the second is 0 when the server closed the connection."""
    host, port = proxy.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=60) as sock:
        sock.sendall(first)
        status, headers = _read_response(sock)
        try:
            sock.sendall(_request("GET", "/health"))
            second, _ = _read_response(sock)
        except OSError:
            second = 0
    return status, headers, second


@pytest.mark.parametrize(
    "first",
    [
        _request("POST", CHAT, chat_with("\\ud800")),
        _request("POST", CHAT, b"[" * 1000),
        _request("GET", "/v1/gists/g-" + "1" * 5000),
        _request("GET", "/no/such/route"),
        _request("PUT", "/v1/models"),
    ],
    ids=["surrogate", "deep", "long-gist-id", "404", "405"],
)
def test_an_error_leaves_the_keep_alive_connection_usable(proxy: str, first: bytes) -> None:
    status, headers, second = _second_request_after(proxy, first)
    assert 400 <= status < 500
    assert headers.get("connection", "").lower() != "close"
    assert second == 200


def test_a_500_from_a_bug_keeps_the_pooled_connection(proxy: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A bug inside a route (simulated: the pipeline raises a plain RuntimeError) is a complete 500 with
    the request id; the pooled connection then serves the next request (or the 500 says `close`)."""
    from .conftest import app_state

    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(app_state(proxy).pipeline, "complete", broken)
    status, headers, second = _second_request_after(proxy, _request("POST", CHAT, chat_with("hi")))
    assert status == 500
    assert headers["x-request-id"]
    assert second == 200 or headers.get("connection", "").lower() == "close"
    with httpx.Client(base_url=proxy, timeout=60) as pooled:
        for _ in range(3):  # the pool reuses its one connection: no reset between a 500 and the next
            assert pooled.post(CHAT, content=chat_with("hi"), headers=JSON).status_code == 500
            assert pooled.get("/health").status_code == 200
