"""Options are validated once, at the edge, before any stage runs; only a UserError becomes a 4xx; a
missing optional package is a clear error, never an ignored option. Real proxy on the embedded engine,
with every stage wrapped in a spy that records whether it ran."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from middleware.config import Settings
from middleware.server import create_app

from .conftest import serve_app_in_thread

CHAT = [{"role": "user", "content": "What is 2+2?"}]


@pytest.fixture(scope="module")
def proxy(local_backend, tmp_path_factory) -> Iterator[tuple[str, list[str]]]:
    """(base URL, names of the stages that ran), the list cleared by each test."""
    settings = Settings(data_dir=tmp_path_factory.mktemp("data"))
    app = create_app(settings, backend=local_backend)
    ran: list[str] = []
    with serve_app_in_thread(app) as base:
        pipeline = app.state.promptfold.pipeline
        pipeline.stages = [Spy(stage, ran) for stage in pipeline.stages]
        yield base, ran


class Spy:
    """A stage that notes its name in `ran`, then runs the real stage."""

    def __init__(self, stage: Any, ran: list[str]) -> None:
        self.stage, self.name, self.ran = stage, stage.name, ran

    async def __call__(self, request: Any, context: Any) -> Any:
        self.ran.append(self.name)
        return await self.stage(request, context)


def chat(base: str, promptfold: dict[str, Any], **extra: Any) -> httpx.Response:
    body = {"model": "default", "messages": CHAT, "max_tokens": 2, "promptfold": promptfold, **extra}
    return httpx.post(f"{base}/v1/chat/completions", json=body, timeout=120)


BAD_OPTIONS = [
    ({"compress": {"rate": 5}}, "promptfold.compress.rate"),
    ({"compress": {"ratio": 0.5}}, "promptfold.compress.ratio"),
    ({"compress": "yes"}, "promptfold.compress"),
    ({"retrieval": {"top_k": 0}}, "promptfold.retrieval.top_k"),
    ({"retrieval": {"corpus": "docs", "documents": ["x"]}}, "promptfold.retrieval"),
    ({"gist": {"id": 7}}, "promptfold.gist.id"),
    ({"gist": {"name": "g-1"}}, "promptfold.gist.name"),
    ({"organize": "fast"}, "promptfold.organize.mode"),
    ({"organize": {"mode": "sot", "max_points": 99}}, "promptfold.organize.max_points"),
    ({"compres": {"rate": 0.5}}, "promptfold.compres"),
]


@pytest.mark.parametrize(("options", "param"), BAD_OPTIONS)
def test_a_bad_value_of_any_stage_is_a_400_naming_its_path_before_any_stage_runs(
    proxy: tuple[str, list[str]], options: dict[str, Any], param: str
) -> None:
    base, ran = proxy
    ran.clear()
    response = chat(base, options)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param
    assert ran == []


def test_a_bad_organize_knob_is_refused_before_retrieval_and_compression_run(
    proxy: tuple[str, list[str]],
) -> None:
    base, ran = proxy
    ran.clear()
    options = {"retrieval": {"top_k": 2}, "compress": {"rate": 0.5}, "organize": {"max_points": 1}}
    response = chat(base, options)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "promptfold.organize.max_points"
    assert ran == []
    ran.clear()
    assert chat(base, {"retrieval": {"top_k": 2}, "compress": {"rate": 0.5}}).status_code == 200
    assert ran == ["retrieval", "gist", "compress"]  # the same request with a good knob runs them all


def test_an_internal_value_error_deep_in_a_stage_is_a_500_with_a_request_id(
    proxy: tuple[str, list[str]], local_backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    from middleware.compress.service import CompressionService

    async def broken(self: Any, *args: Any, **kwargs: Any) -> Any:
        raise ValueError("zip() argument 2 is shorter than argument 1")  # a bug, not the client's fault

    monkeypatch.setattr(CompressionService, "compress", broken)
    base, _ = proxy
    response = chat(base, {"compress": {"rate": 0.5}}, messages=[{"role": "user", "content": "x " * 200}])
    assert response.status_code == 500
    error = response.json()["error"]
    assert error["code"] == "internal_error" and error["type"] == "server_error"
    request_id = response.headers["x-request-id"]
    assert (
        request_id in error["message"] and "Traceback" not in response.text and "zip()" not in response.text
    )


def test_the_client_request_id_is_echoed_and_every_response_has_one(proxy: tuple[str, list[str]]) -> None:
    base, _ = proxy
    mine = httpx.get(f"{base}/v1/models", headers={"x-request-id": "abc-123"}, timeout=30)
    assert mine.headers["x-request-id"] == "abc-123"
    assert httpx.get(f"{base}/no/such/route", timeout=30).headers["x-request-id"].startswith("req-")


def test_retrieval_without_faiss_is_a_clear_501_not_an_ignored_option(
    proxy: tuple[str, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    real = importlib.util.find_spec

    def without_faiss(name: str, *args: Any) -> Any:
        return None if name == "faiss" else real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", without_faiss)  # simulated: faiss is not installed
    base, _ = proxy
    response = chat(base, {"retrieval": {"corpus": "docs"}})
    assert response.status_code == 501
    assert "faiss-cpu" in response.json()["error"]["message"]
    assert httpx.get(f"{base}/v1/corpora", timeout=30).status_code == 501
