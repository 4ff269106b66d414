"""The SGLang side of organized answers, against the FAKE SGLang server (SGLang needs a GPU; the real one
runs in bench/gpu/organize_sglang.sh): the branches' shared prefix is warmed once, by the executor."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from backend import Prompt, SamplingParams
from backend.sglang import SGLangBackend
from tests.fakes import serve_in_thread
from tests.fakes import toy_model as toy
from tests.fakes.fake_sglang import FakeSGLangServer

PREFIX = "Question: what helps a garden grow? Explain this part of the answer in two sentences:"


@pytest.fixture
def fake() -> Iterator[FakeSGLangServer]:
    server = FakeSGLangServer()
    with serve_in_thread(server.app) as url:
        server.url = url  # type: ignore[attr-defined]
        yield server


async def test_a_batch_whose_prefix_was_just_warmed_is_sent_without_a_second_warm_up(fake) -> None:
    backend = SGLangBackend(fake.url)
    prefix = toy.tokenize(PREFIX)
    await backend.warm_prefix(Prompt.from_token_ids(prefix))
    branches = [
        Prompt.from_token_ids(prefix + toy.tokenize(f" {point}")[1:]) for point in ("Water", "Sun", "Soil")
    ]
    results = await backend.generate(branches, SamplingParams(temperature=0, max_tokens=4))
    await backend.close()
    bodies = [body for path, body in fake.requests if path == "/generate"]
    assert [b["sampling_params"].get("max_new_tokens") for b in bodies] == [0, 4]  # one warm-up, one batch
    assert len(bodies[1]["input_ids"]) == 3
    assert all(r.usage.cached_tokens >= len(prefix) for r in results)


async def test_a_batch_with_an_unwarmed_shared_prefix_still_gets_its_own_warm_up(fake) -> None:
    backend = SGLangBackend(fake.url)
    await backend.warm_prefix(Prompt.from_token_ids(toy.tokenize("something else entirely, long enough")))
    prefix = toy.tokenize(PREFIX)
    branches = [Prompt.from_token_ids(prefix + toy.tokenize(f" {point}")[1:]) for point in ("Water", "Sun")]
    await backend.generate(branches, SamplingParams(temperature=0, max_tokens=4))
    await backend.close()
    bodies = [body for path, body in fake.requests if path == "/generate"]
    assert [b["sampling_params"].get("max_new_tokens") for b in bodies] == [0, 0, 4]
