"""With `PROMPTFOLD_API_KEY` set, everything but /health asks for the key: /metrics (traffic and token
volumes) and the API description (/openapi.json, /docs, /redoc) included, unless the settings open them."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from .conftest import serve_proxy

KEY = "fault-suite-key"
GUARDED = ["/metrics", "/openapi.json", "/docs", "/redoc", "/v1/models", "/v1/corpora", "/v1/gists"]


@pytest.fixture(scope="module")
def keyed(local_backend: object, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from serve_proxy(local_backend, tmp_path_factory.mktemp("keyed"), api_key=KEY)


@pytest.fixture(scope="module")
def keyed_open_docs(local_backend: object, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from serve_proxy(
        local_backend,
        tmp_path_factory.mktemp("open"),
        api_key=KEY,
        metrics_need_key=False,
        docs_need_key=False,
    )


@pytest.mark.parametrize("path", GUARDED)
def test_every_route_but_health_needs_the_key(keyed: str, path: str) -> None:
    assert httpx.get(keyed + path).status_code == 401
    assert httpx.get(keyed + path, headers={"authorization": "Bearer wrong"}).status_code == 401
    assert httpx.get(keyed + path, headers={"authorization": f"Bearer {KEY}"}).status_code == 200


def test_health_stays_open_for_load_balancers(keyed: str) -> None:
    assert httpx.get(f"{keyed}/health").status_code == 200


@pytest.mark.parametrize("path", ["/metrics", "/openapi.json", "/docs", "/redoc"])
def test_settings_can_open_metrics_and_docs(keyed_open_docs: str, path: str) -> None:
    assert httpx.get(keyed_open_docs + path).status_code == 200
    assert httpx.get(f"{keyed_open_docs}/v1/models").status_code == 401
