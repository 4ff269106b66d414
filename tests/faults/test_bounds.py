"""The largest prompt each surface accepts (`max_prompt_tokens`, `max_compress_tokens`,
`max_ingest_tokens`), checked before any model work: a 5 MB prompt is refused in milliseconds with a 413
naming the limit, a prompt near the limit is counted off the event loop, and /health stays fast meanwhile."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from .conftest import serve_proxy

FIVE_MB = "word " * (1024 * 1024)  # 5 MiB of text, about 1M tokens
WORDS = "hello " * 80  # 80 tokens in 480 bytes: over the compression limit below, under the prompt one


@pytest.fixture(scope="module")
def small_limits(local_backend: object, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from serve_proxy(
        local_backend,
        tmp_path_factory.mktemp("limits"),
        max_prompt_tokens=100,
        max_compress_tokens=60,
        max_ingest_tokens=80,
    )


def _refused(response: httpx.Response, setting: str) -> None:
    assert response.status_code == 413, response.text
    error = response.json()["error"]
    assert error["code"] == "prompt_too_long"
    assert setting in error["message"]


@pytest.mark.parametrize(
    ("path", "body", "setting"),
    [
        ("/v1/compress", {"prompt": FIVE_MB, "compress": {"rate": 0.5}}, "max_compress_tokens"),
        ("/v1/compress", {"messages": [{"role": "user", "content": FIVE_MB}]}, "max_compress_tokens"),
        (
            "/v1/chat/completions",
            {"model": "default", "messages": [{"role": "user", "content": FIVE_MB}]},
            "max_prompt_tokens",
        ),
        ("/v1/completions", {"model": "default", "prompt": FIVE_MB}, "max_prompt_tokens"),
    ],
)
def test_a_5_mb_prompt_is_refused_in_milliseconds(
    client: httpx.Client, path: str, body: dict, setting: str
) -> None:
    content = httpx.Request("POST", "http://x", json=body).content
    started = time.perf_counter()
    response = client.post(path, content=content, headers={"content-type": "application/json"})
    elapsed = time.perf_counter() - started
    _refused(response, setting)
    assert elapsed < 1.0, f"{elapsed:.3f} s"  # upload and parse of 5 MB included; no tokenizing


def test_health_stays_fast_while_5_mb_prompts_arrive(client: httpx.Client, proxy: str) -> None:
    body = httpx.Request("POST", "http://x", json={"prompt": FIVE_MB}).content
    stop = threading.Event()

    def hammer() -> None:
        with httpx.Client(base_url=proxy, timeout=60) as own:
            while not stop.is_set():
                own.post("/v1/compress", content=body, headers={"content-type": "application/json"})

    threads = [threading.Thread(target=hammer) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        worst = 0.0
        for _ in range(20):
            started = time.perf_counter()
            assert client.get("/health").status_code == 200
            worst = max(worst, time.perf_counter() - started)
            time.sleep(0.05)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert worst < 0.5, f"/health took {worst:.3f} s"


def test_a_prompt_over_the_limit_is_counted_then_refused(small_limits: str) -> None:
    chat = {"model": "default", "max_tokens": 2, "messages": [{"role": "user", "content": WORDS * 2}]}
    _refused(httpx.post(f"{small_limits}/v1/chat/completions", json=chat, timeout=60), "max_prompt_tokens")


def test_a_prompt_under_the_limit_passes_although_it_has_more_bytes(small_limits: str) -> None:
    short = "hello " * 30  # 180 bytes: counted (more bytes than the limit), 30 tokens
    chat = {"model": "default", "max_tokens": 2, "messages": [{"role": "user", "content": short}]}
    assert httpx.post(f"{small_limits}/v1/chat/completions", json=chat, timeout=60).status_code == 200


def test_a_chat_that_compresses_is_held_to_the_compression_limit(small_limits: str) -> None:
    chat = {
        "model": "default",
        "max_tokens": 2,
        "messages": [{"role": "user", "content": WORDS}],
        "promptfold": {"compress": {"rate": 0.5}},
    }
    _refused(httpx.post(f"{small_limits}/v1/chat/completions", json=chat, timeout=60), "max_compress_tokens")
    plain = {**chat, "promptfold": {"compress": False}}
    assert httpx.post(f"{small_limits}/v1/chat/completions", json=plain, timeout=60).status_code != 413


def test_gist_prefixes_and_ingests_are_bounded_too(small_limits: str) -> None:
    gist = {"prefix": WORDS * 2, "tokens": 4}
    _refused(httpx.post(f"{small_limits}/v1/gists", json=gist, timeout=60), "max_prompt_tokens")
    httpx.post(f"{small_limits}/v1/corpora", json={"name": "bounded"}, timeout=60)
    documents = {"documents": [{"id": "a", "text": WORDS * 2}]}
    response = httpx.post(f"{small_limits}/v1/corpora/bounded/documents", json=documents, timeout=60)
    _refused(response, "max_ingest_tokens")
