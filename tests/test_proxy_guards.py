"""API key and body-size guards, on an app that shares the session's embedded engine."""

from __future__ import annotations

import httpx
import openai
import pytest

from middleware.config import Settings
from middleware.server import create_app

from .conftest import serve_app_in_thread

KEY = "s3cret-key"
CHAT = [{"role": "user", "content": "Say yes."}]


@pytest.fixture(scope="module")
def guarded_url(local_backend):
    settings = Settings(api_key=KEY, max_body_bytes=2048)
    with serve_app_in_thread(create_app(settings, backend=local_backend)) as url:
        yield url


def test_the_right_key_is_served(guarded_url: str) -> None:
    client = openai.OpenAI(base_url=f"{guarded_url}/v1", api_key=KEY, max_retries=0)
    response = client.chat.completions.create(model="default", messages=CHAT, max_tokens=3)
    assert response.choices[0].message.content is not None


def test_a_wrong_key_is_a_401(guarded_url: str) -> None:
    client = openai.OpenAI(base_url=f"{guarded_url}/v1", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as caught:
        client.chat.completions.create(model="default", messages=CHAT, max_tokens=3)
    assert caught.value.body["code"] == "invalid_api_key"  # type: ignore[index]


def test_no_key_is_a_401(guarded_url: str) -> None:
    response = httpx.get(f"{guarded_url}/v1/models")
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_health_needs_no_key_but_metrics_does(guarded_url: str) -> None:
    assert httpx.get(f"{guarded_url}/health").status_code == 200
    assert httpx.get(f"{guarded_url}/metrics").status_code == 401  # traffic and token volumes
    auth = {"authorization": f"Bearer {KEY}"}
    assert httpx.get(f"{guarded_url}/metrics", headers=auth).status_code == 200


def test_an_oversize_body_is_a_413(guarded_url: str) -> None:
    client = openai.OpenAI(base_url=f"{guarded_url}/v1", api_key=KEY, max_retries=0)
    big = [{"role": "user", "content": "x" * 4000}]
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model="default", messages=big, max_tokens=3)
    assert caught.value.status_code == 413
    assert caught.value.body["code"] == "request_too_large"  # type: ignore[index]


def test_an_oversize_chunked_body_is_a_413_too(guarded_url: str) -> None:
    def body():  # no content-length: the guard must count what arrives
        yield b'{"model": "default", "messages": [{"role": "user", "content": "'
        for _ in range(10):
            yield b"y" * 500
        yield b'"}]}'

    response = httpx.post(
        f"{guarded_url}/v1/chat/completions",
        content=body(),
        headers={"authorization": f"Bearer {KEY}", "content-type": "application/json"},
    )
    assert response.status_code == 413
