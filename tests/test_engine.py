"""The engine's batching is exact: on a tiny random Llama in fp32, every row of a mixed batch (shared
prefix, cached prefix, unrelated prompt, input embeddings, a request that joins mid-decode) produces
the same tokens as that prompt decoded alone by plain transformers `generate`."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from backend.base import SamplingParams
from backend.engine.model import LoadedModel
from backend.engine.prefix_cache import PrefixCache
from backend.engine.requests import EngineRequest
from backend.engine.scheduler import Engine

from .engine_doubles import Collect, tiny_llama


@pytest.fixture(scope="module")
def tiny(local_backend) -> LoadedModel:
    return tiny_llama(local_backend.loaded.tokenizer, local_backend.loaded.path)


def solo_greedy(
    tiny: LoadedModel, ids: list[int] | None, n: int, embeds: torch.Tensor | None = None
) -> list[int]:
    with torch.inference_mode():
        if embeds is not None:
            out = tiny.model.generate(
                inputs_embeds=embeds.unsqueeze(0),
                max_new_tokens=n,
                do_sample=False,
                min_new_tokens=n,
                pad_token_id=0,
            )
            return out[0].tolist()
        out = tiny.model.generate(
            torch.tensor([ids]), max_new_tokens=n, do_sample=False, min_new_tokens=n, pad_token_id=0
        )
    return out[0, len(ids) :].tolist()


GREEDY = SamplingParams(temperature=0, max_tokens=12)
rng = np.random.default_rng(7)
SHARED = rng.integers(100, 40000, 40).tolist()
PROMPTS = [SHARED + rng.integers(100, 40000, k).tolist() for k in (3, 9, 5)] + [
    rng.integers(100, 40000, 11).tolist()
]


def test_a_mixed_batch_decodes_exactly_like_each_prompt_alone(tiny: LoadedModel) -> None:
    engine = Engine(tiny, max_rows=16)
    engine.prefix_cache.insert(np.array(PROMPTS[0][:30]), _kv_of(tiny, PROMPTS[0][:30]))  # a cached prefix
    engine.start()
    embeds = tiny.embed(torch.tensor(PROMPTS[3][:7])).detach()
    sinks = [Collect() for _ in range(5)]
    group = [EngineRequest(GREEDY, s, token_ids=np.array(p)) for s, p in zip(sinks, PROMPTS, strict=False)]
    group.append(EngineRequest(GREEDY, sinks[4], embeds=embeds))
    engine.submit(group)
    results = [s.wait() for s in sinks]
    engine.stop()
    for prompt, result in zip(PROMPTS, results, strict=False):
        assert result.token_ids == solo_greedy(tiny, prompt, 12)
    assert results[4].token_ids == solo_greedy(tiny, None, 12, embeds=embeds)
    # the shared 40-token prefix was computed once: the first sharer reports what was cached before
    # (30 tokens, from the entry above), the other two report the whole shared prefix
    assert [r.usage.cached_tokens for r in results[:3]] == [30, 40, 40]
    assert results[3].usage.cached_tokens == 0


def test_a_request_joining_mid_decode_is_exact_too(tiny: LoadedModel) -> None:
    engine = Engine(tiny, max_rows=16)
    engine.start()
    long_run, late = Collect(), Collect()
    engine.submit(
        [
            EngineRequest(
                SamplingParams(temperature=0, max_tokens=60), long_run, token_ids=np.array(PROMPTS[3])
            )
        ]
    )
    while engine.steps < 5:
        time.sleep(0.005)
    engine.submit([EngineRequest(GREEDY, late, token_ids=np.array(PROMPTS[1]))])
    late_result, long_result = late.wait(), long_run.wait()
    engine.stop()
    assert long_result.token_ids == solo_greedy(tiny, PROMPTS[3], 60)
    assert late_result.token_ids == solo_greedy(tiny, PROMPTS[1], 12)
    assert engine.rows_per_step_total > engine.steps  # some steps decoded both rows together


def test_prompt_logprobs_match_a_plain_forward(tiny: LoadedModel) -> None:
    engine = Engine(tiny)
    engine.prefix_cache.insert(np.array(PROMPTS[0][:30]), _kv_of(tiny, PROMPTS[0][:30]))
    engine.start()
    sink = Collect()
    engine.submit(
        [
            EngineRequest(
                SamplingParams(max_tokens=0),
                sink,
                token_ids=np.array(PROMPTS[0]),
                prompt_logprobs=True,
                logprob_start=10,
            )
        ]
    )
    result = sink.wait()
    engine.stop()
    with torch.inference_mode():
        logits = tiny.model(torch.tensor([PROMPTS[0]])).logits[0].float()
    expected = (
        torch.log_softmax(logits, -1)[:-1].gather(1, torch.tensor(PROMPTS[0][1:]).unsqueeze(1)).squeeze(1)
    )
    got = result.prompt_logprobs
    assert got is not None and all(v is None for v in got[:10])
    assert np.allclose(got[10:], expected[9:].numpy(), atol=1e-4)
    assert result.usage.completion_tokens == 0 and result.text == ""


def _kv_of(tiny: LoadedModel, ids: list[int]):
    with torch.inference_mode():
        out = tiny.model(torch.tensor([ids]), use_cache=True)
    return [(layer.keys.clone(), layer.values.clone()) for layer in out.past_key_values.layers]


# --- the prefix cache on its own -----------------------------------------------------------------


def _fake_kv(n: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(torch.zeros(1, 1, n, 4), torch.zeros(1, 1, n, 4))]


def test_prefix_cache_serves_the_longest_partial_match() -> None:
    cache = PrefixCache(budget_bytes=10**6, min_tokens=4)
    cache.insert(np.arange(10), _fake_kv(10))
    cache.insert(np.array([1, 2, 3, 4, 5, 6]), _fake_kv(6))
    match = cache.lookup(np.array([0, 1, 2, 3, 4, 5, 99]), limit=100)
    assert match.length == 6 and match.entry is not None and len(match.entry.tokens) == 10
    assert cache.lookup(np.array([0, 1, 2, 3, 4, 5, 99]), limit=5).length == 5
    assert cache.lookup(np.array([0, 1, 9]), limit=100).entry is None  # below min_tokens


def test_prefix_cache_evicts_least_recent_and_keeps_pinned_entries() -> None:
    per_entry = 2 * 10 * 4 * 4  # keys + values, 10 tokens x 4 floats
    cache = PrefixCache(budget_bytes=2 * per_entry, min_tokens=4)
    cache.insert(np.arange(100, 110), _fake_kv(10), pinned=True)
    cache.insert(np.arange(200, 210), _fake_kv(10))
    cache.insert(np.arange(300, 310), _fake_kv(10))
    assert cache.covers(np.arange(100, 110))
    assert not cache.covers(np.arange(200, 210))
    assert cache.covers(np.arange(300, 310))
