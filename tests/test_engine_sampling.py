"""The engine honours every sampling field, and per-token logprobs are the model's own numbers.

Most checks run on a tiny random Llama in fp32 (exact and fast); the logprob check and the n-choices
check also run on the real SmolLM2."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from backend import Prompt, SamplingParams
from backend.engine.logits import RowRules, TokenHistory, apply_rules
from backend.engine.model import LoadedModel
from backend.engine.requests import EngineRequest
from backend.engine.scheduler import Engine
from backend.sampling_params import per_copy_seeds

from .engine_doubles import Collect, tiny_llama

PROMPT = [504, 3575, 282, 4649, 314, 1345, 28, 253, 3714, 1208]


@pytest.fixture(scope="module")
def tiny(local_backend) -> LoadedModel:
    return tiny_llama(local_backend.loaded.tokenizer, local_backend.loaded.path)


def run(model: LoadedModel, *samplings: SamplingParams, prompt: list[int] = PROMPT) -> list[Collect]:
    """Decode `prompt` once per sampling, all in one group; return the sinks once all have answered."""
    engine = Engine(model, max_rows=32)
    engine.start()
    sinks = [Collect() for _ in samplings]
    engine.submit(
        [EngineRequest(s, sink, token_ids=np.array(prompt)) for s, sink in zip(samplings, sinks, strict=True)]
    )
    for sink in sinks:
        sink.wait()
    engine.stop()
    return sinks


def forward_logprobs(model: LoadedModel, prompt: list[int], answer: list[int]) -> torch.Tensor:
    """log-softmax of a plain forward over prompt + answer, at the positions that predict the answer."""
    with torch.inference_mode():
        logits = model.model(torch.tensor([prompt + answer])).logits[0].float()
    return torch.log_softmax(logits[len(prompt) - 1 : -1], dim=-1)


def test_logprobs_equal_a_direct_forward_over_prompt_and_answer(tiny: LoadedModel) -> None:
    [sink] = run(tiny, SamplingParams(temperature=1.0, seed=3, max_tokens=8, logprobs=True, top_logprobs=3))
    result = sink.wait()
    assert result.logprobs is not None and len(result.logprobs) == len(result.token_ids) == 8
    expected = forward_logprobs(tiny, PROMPT, result.token_ids)
    for k, entry in enumerate(result.logprobs):
        assert entry.token_id == result.token_ids[k]
        assert entry.logprob == pytest.approx(float(expected[k, entry.token_id]), abs=1e-4)
        values, ids = expected[k].topk(3)
        assert [t.token_id for t in entry.top_logprobs] == ids.tolist()
        assert [t.logprob for t in entry.top_logprobs] == pytest.approx(values.tolist(), abs=1e-4)
        assert entry.token == tiny.tokenizer.decode([entry.token_id])
    # the stream carries the same entries, one per token, in order
    assert sink.delta_ids == result.token_ids
    assert sink.delta_logprobs == result.logprobs


async def test_smollm2_logprobs_match_a_direct_forward_within_bf16_tolerance(local_backend) -> None:
    prompt = Prompt.from_text("The three primary colours are")
    [result] = await local_backend.generate(
        [prompt], SamplingParams(temperature=0, max_tokens=8, logprobs=True, top_logprobs=2)
    )
    ids = local_backend.loaded.tokenizer(prompt.text)["input_ids"]
    expected = forward_logprobs(local_backend.loaded, ids, result.token_ids)
    got = torch.tensor([e.logprob for e in result.logprobs])
    want = expected.gather(1, torch.tensor(result.token_ids).unsqueeze(1)).squeeze(1)
    assert torch.allclose(got, want, atol=0.15), (got, want)
    assert all(e.top_logprobs[0].logprob >= e.logprob - 0.15 for e in result.logprobs)  # greedy: the best


def test_logit_bias_can_force_a_token_and_ban_another(tiny: LoadedModel) -> None:
    plain, forced = run(
        tiny,
        SamplingParams(temperature=0, max_tokens=4),
        SamplingParams(temperature=0, max_tokens=4, logit_bias={1234: 100}),
    )
    assert forced.wait().token_ids == [1234] * 4
    first = plain.wait().token_ids[0]
    [banned] = run(tiny, SamplingParams(temperature=0, max_tokens=4, logit_bias={first: -100}))
    assert first not in banned.wait().token_ids


def test_stop_token_ids_end_the_answer_and_min_tokens_holds_them_back(tiny: LoadedModel) -> None:
    [plain] = run(tiny, SamplingParams(temperature=0, max_tokens=6))
    first = plain.wait().token_ids[0]
    stopped, held = run(
        tiny,
        SamplingParams(temperature=0, max_tokens=6, stop_token_ids=[first]),
        SamplingParams(temperature=0, max_tokens=6, stop_token_ids=[first], min_tokens=4),
    )
    cut = stopped.wait()
    assert cut.token_ids == [first] and cut.finish_reason == "stop" and cut.text == ""
    late = held.wait()
    assert len(late.token_ids) >= 4 and first not in late.token_ids[:4]


async def test_ignore_eos_runs_the_answer_to_max_tokens(local_backend) -> None:
    prompt = Prompt.from_messages(
        [{"role": "user", "content": "Reply with one word: yes or no. Is water wet?"}]
    )
    [plain] = await local_backend.generate([prompt], SamplingParams(temperature=0, max_tokens=12))
    [kept_going] = await local_backend.generate(
        [prompt], SamplingParams(temperature=0, max_tokens=12, ignore_eos=True)
    )
    assert plain.finish_reason == "stop" and plain.usage.completion_tokens < 12
    assert kept_going.finish_reason == "length" and kept_going.usage.completion_tokens == 12
    assert not set(kept_going.token_ids) & local_backend.loaded.stop_token_ids


def test_top_k_one_and_min_p_one_sample_like_greedy_in_one_mixed_step(tiny: LoadedModel) -> None:
    greedy, top1, minp1, greedy_with_rules = run(
        tiny,
        SamplingParams(temperature=0, max_tokens=8),
        SamplingParams(temperature=1.0, top_k=1, seed=1, max_tokens=8),
        SamplingParams(temperature=1.0, min_p=1.0, seed=2, max_tokens=8),
        SamplingParams(temperature=0, top_k=50, max_tokens=8),  # greedy stays greedy on the ruled path
    )
    expected = greedy.wait().token_ids
    assert top1.wait().token_ids == expected
    assert minp1.wait().token_ids == expected
    assert greedy_with_rules.wait().token_ids == expected


def test_penalties_follow_the_openai_and_vllm_formulas() -> None:
    logits = torch.tensor([[2.0, -2.0, 1.0, 0.5]])
    history = TokenHistory(4, np.array([1]))  # token 1 is in the prompt
    for token in (0, 0, 2):  # the answer so far: token 0 twice, token 2 once
        history.add(token)
    sampling = SamplingParams(frequency_penalty=0.5, presence_penalty=0.25, repetition_penalty=2.0)
    apply_rules(logits, [RowRules(sampling, frozenset(), history=history)], [None])
    expected = [2.0 / 2 - 0.5 * 2 - 0.25, -2.0 * 2, 1.0 / 2 - 0.5 - 0.25, 0.5]
    assert logits[0].tolist() == pytest.approx(expected)


def test_the_ith_copy_of_a_prompt_samples_with_seed_plus_i() -> None:
    a, b = Prompt.from_text("a"), Prompt.from_text("b")
    seeds = [s.seed for s in per_copy_seeds([a, a, b, a, Prompt.from_text("a")], SamplingParams(seed=7))]
    assert seeds == [7, 8, 7, 9, 10]
    assert {s.seed for s in per_copy_seeds([a, a], SamplingParams())} == {None}


async def test_n_seeded_choices_differ_and_repeat_run_to_run(local_backend) -> None:
    prompt = Prompt.from_text("My favourite animal is the")
    sampling = SamplingParams(temperature=1.0, max_tokens=6, seed=11)
    first = [r.text for r in await local_backend.generate([prompt] * 3, sampling)]
    again = [r.text for r in await local_backend.generate([prompt] * 3, sampling)]
    assert len(set(first)) >= 2
    assert again == first
