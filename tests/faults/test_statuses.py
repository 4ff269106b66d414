"""Statuses as the README's table says: a failing engine is 502 (not 500), a wrong method 405 with the
`Allow` of every route on the path, and a remote backend that was never reached lists no model `""`."""

from __future__ import annotations

import httpx
import pytest

from backend import BackendError
from middleware.config import Settings

from .conftest import app_state, serve_unhealthy
from .fake_backends import dead_backend

CHAT = {"model": "default", "max_tokens": 2, "messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", "/v1/corpora", {"GET", "POST"}),
        ("PATCH", "/v1/corpora/docs", {"GET", "DELETE"}),
        ("DELETE", "/v1/models", {"GET"}),
        ("GET", "/v1/chat/completions", {"POST"}),
        ("POST", "/health", {"GET"}),
    ],
)
def test_a_405_says_every_allowed_method(
    client: httpx.Client, method: str, path: str, allowed: set[str]
) -> None:
    response = client.request(method, path)
    assert response.status_code == 405
    assert allowed <= {m.strip() for m in response.headers["allow"].split(",")}
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_an_engine_failure_is_a_502(
    client: httpx.Client, proxy: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def failing(*args: object, **kwargs: object) -> None:  # what the local engine raises on a crash
        raise BackendError("local engine error: RuntimeError: out of memory", status=500, backend="local")

    monkeypatch.setattr(app_state(proxy).pipeline, "complete", failing)
    response = client.post("/v1/chat/completions", json=CHAT)
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "backend_error"
    assert "out of memory" in response.json()["error"]["message"]


def test_an_unreached_backend_lists_no_empty_model(tmp_path) -> None:
    with serve_unhealthy(Settings(backend=dead_backend(), data_dir=tmp_path)) as url:
        models = httpx.get(f"{url}/v1/models", timeout=30)
        assert models.status_code == 200
        assert "" not in [m["id"] for m in models.json()["data"]]
        named = httpx.post(f"{url}/v1/chat/completions", json={**CHAT, "model": "some-model"}, timeout=30)
        assert named.status_code == 503  # not "404: this server serves ''"
        assert httpx.get(f"{url}/health", timeout=30).status_code == 503
