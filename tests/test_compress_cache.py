"""Cache-stable compression: the same input and options give the same output, repeats are cache hits, an
earlier turn of a growing conversation is compressed once and reused byte for byte, and the proxy path
gives what the SDK gives for the same text."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from middleware.compress.options import CompressOptions
from middleware.compress.service import CompressionService
from middleware.config import Settings
from middleware.server import create_app

from .conftest import serve_app_in_thread
from .test_compress import REPORT

FEWSHOT = (
    "Here are worked examples of the format we expect, with the reasoning written out in full sentences "
    "before the final answer, so that a reader can follow every step of the calculation without guessing. "
) * 3


@pytest.fixture(scope="module")
def service(local_backend) -> CompressionService:
    return CompressionService(local_backend)


def run(coro):
    return asyncio.run(coro)


def test_the_same_text_twice_is_a_cache_hit_with_the_same_output(service: CompressionService) -> None:
    options = CompressOptions(rate=0.5)
    first = run(service.compress(options, text=REPORT))
    again = run(service.compress(options, text=REPORT))
    assert first.cache == [{"cache_hit": False}] and again.cache == [{"cache_hit": True}]
    assert again.text == first.text and again.compressed_tokens == first.compressed_tokens
    fresh = run(CompressionService.around(run(service.compressor())).compress(options, text=REPORT))
    assert fresh.text == first.text  # recomputed from scratch by another service: the same bytes


def test_earlier_turns_are_compressed_once_and_reused_byte_for_byte(service: CompressionService) -> None:
    options = CompressOptions(rate=0.5, min_message_tokens=16)
    turn1 = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": FEWSHOT + "\n\nWhat do the examples show?"},
    ]
    first = run(service.compress(options, messages=turn1))
    assert [c["cache_hit"] for c in first.cache] == [False]
    turn2 = [
        *turn1,
        {"role": "assistant", "content": REPORT},
        {"role": "user", "content": REPORT + "\n\nHow much did revenue grow?"},
    ]
    second = run(service.compress(options, messages=turn2))
    assert {c["message"]: c["cache_hit"] for c in second.cache} == {1: True, 2: False, 3: False}
    assert second.messages is not None and first.messages is not None
    assert second.messages[:2] == first.messages  # the prefix the backend cached is unchanged
    assert second.messages[3]["content"].endswith("How much did revenue grow?")
    assert second.compressed_tokens < second.original_tokens


def test_the_proxy_and_the_sdk_give_the_same_compression(local_backend) -> None:
    from middleware import Middleware

    messages = [{"role": "user", "content": REPORT + "\n\nHow much did revenue grow?"}]
    options = {"rate": 0.4, "mode": "question_aware"}
    with Middleware(local_backend) as mw:
        sdk = mw.compress(messages, **options)
    with serve_app_in_thread(create_app(Settings(), backend=local_backend)) as base:
        body = {"messages": messages, "compress": options}
        proxy = httpx.post(f"{base}/v1/compress", json=body, timeout=120).json()
    assert proxy["messages"] == sdk.messages
    [stage] = proxy["promptfold"]["stages"]
    assert stage["details"]["cache"] == [{"cache_hit": False}]
