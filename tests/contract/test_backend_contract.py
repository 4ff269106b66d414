"""One suite of assertions every Backend must pass: the embedded engine in CI, SGLang on the GPU machine.

The model is SmolLM2-135M-Instruct in both places, so greedy answers to simple prompts are checked for
content ("Paris", "4"), not only for shape.
"""

from __future__ import annotations

import math

import pytest

from backend import Backend, BackendError, Constraint, Prompt, SamplingParams, UnsupportedRequest

GREEDY = SamplingParams(temperature=0, max_tokens=16)
PARAGRAPH = (
    "In the quiet valley of Aldermere, the river bends twice before it reaches the old mill. "
    "Farmers there keep bees, grow barley, and trade wool at the autumn market. "
)


async def test_declares_what_it_can_do(backend: Backend) -> None:
    caps = backend.capabilities
    assert caps.batch and caps.streaming
    assert isinstance(backend.model_id, str) and backend.model_id
    health = await backend.health()
    assert health.ok, health.detail


async def test_batch_answers_come_back_in_prompt_order(backend: Backend) -> None:
    prompts = ["The capital of France is", "The capital of Italy is", "The capital of Japan is"]
    results = await backend.generate([Prompt.from_text(p) for p in prompts], GREEDY)
    assert len(results) == 3
    assert "Paris" in results[0].text
    assert "Rome" in results[1].text
    assert "Tokyo" in results[2].text
    for result in results:
        assert result.usage.prompt_tokens >= 5
        assert 0 < result.usage.completion_tokens <= GREEDY.max_tokens
        assert result.finish_reason in ("stop", "length")


async def test_greedy_decoding_is_repeatable(backend: Backend) -> None:
    # Only for the same batch shape: in bf16, a batch of 2 and a batch of 1 round differently (SGLang too).
    prompt = Prompt.from_text("Write one sentence about the sea:")
    sampling = SamplingParams(temperature=0, max_tokens=24)
    first, second = await backend.generate([prompt, prompt], sampling)
    [third] = await backend.generate([prompt], sampling)
    [fourth] = await backend.generate([prompt], sampling)
    assert first.text == second.text
    assert third.text == fourth.text


async def test_same_seed_gives_the_same_sample(backend: Backend) -> None:
    if not backend.capabilities.seeded_sampling:
        pytest.skip("backend does not declare seeded sampling")
    sampling = SamplingParams(temperature=1.0, max_tokens=12, seed=1234)
    prompt = Prompt.from_text("Once upon a time")
    [a] = await backend.generate([prompt], sampling)
    [b] = await backend.generate([prompt], sampling)
    assert a.text == b.text


async def test_answer_logprobs_come_with_every_token(backend: Backend) -> None:
    if not backend.capabilities.logprobs:
        pytest.skip("backend has no answer logprobs")
    sampling = SamplingParams(temperature=0, max_tokens=6, logprobs=True, top_logprobs=3)
    [result] = await backend.generate([Prompt.from_text("The capital of France is")], sampling)
    assert result.logprobs is not None and len(result.logprobs) == result.usage.completion_tokens
    for entry in result.logprobs:
        assert math.isfinite(entry.logprob) and entry.logprob <= 1e-4
        tops = [t.logprob for t in entry.top_logprobs]
        assert len(tops) == 3 and tops == sorted(tops, reverse=True)
        assert entry.logprob <= tops[0] + 0.2  # greedy picked (about) the best


async def test_a_choice_constraint_is_obeyed(backend: Backend) -> None:
    if not backend.capabilities.constrained_decoding:
        pytest.skip("backend has no constrained decoding")
    choices = ["red", "green", "blue"]
    sampling = SamplingParams(temperature=1.0, max_tokens=8, seed=4, constraint=Constraint.choice(choices))
    results = await backend.generate([Prompt.from_text("My favourite colour is")] * 2, sampling)
    assert all(r.text in choices for r in results), [r.text for r in results]


async def test_max_tokens_bounds_the_answer(backend: Backend) -> None:
    [result] = await backend.generate(
        [Prompt.from_text("List the days of the week:")], SamplingParams(temperature=0, max_tokens=4)
    )
    assert result.usage.completion_tokens <= 4
    assert result.finish_reason == "length"


async def test_stop_string_ends_the_answer_and_is_not_returned(backend: Backend) -> None:
    sampling = SamplingParams(temperature=0, max_tokens=24, stop=[" 7"])
    [result] = await backend.generate([Prompt.from_text("Count from 1 to 10: 1, 2, 3, 4,")], sampling)
    assert result.finish_reason == "stop"
    assert "7" not in result.text
    assert "5" in result.text


async def test_chat_messages_use_the_chat_template(backend: Backend) -> None:
    messages = [{"role": "user", "content": "What is 2+2?"}]
    [result] = await backend.generate(
        [Prompt.from_messages(messages)], SamplingParams(temperature=0, max_tokens=32)
    )
    assert "4" in result.text
    if backend.capabilities.chat_template:
        rendered = backend.apply_chat_template(messages)
        assert "What is 2+2?" in rendered
        assert len(backend.tokenize(rendered)) == result.usage.prompt_tokens


async def test_token_ids_and_text_give_the_same_answer(backend: Backend) -> None:
    if not backend.capabilities.token_ids:
        pytest.skip("backend takes no token ids")
    text = "The capital of France is"
    ids = backend.tokenize(text)
    by_text, by_ids = await backend.generate([Prompt.from_text(text), Prompt.from_token_ids(ids)], GREEDY)
    assert by_ids.text == by_text.text
    assert by_ids.usage.prompt_tokens == len(ids)


async def test_prompt_logprobs_score_every_prompt_token(backend: Backend) -> None:
    if not backend.capabilities.prompt_logprobs:
        pytest.skip("backend has no prompt logprobs")
    likely, unlikely = await backend.generate(
        [
            Prompt.from_text("The capital of France is Paris"),
            Prompt.from_text("The capital of France is Banana"),
        ],
        SamplingParams(temperature=0, max_tokens=0),
        prompt_logprobs=True,
    )
    for result in (likely, unlikely):
        assert result.prompt_token_ids is not None and result.prompt_logprobs is not None
        assert len(result.prompt_logprobs) == len(result.prompt_token_ids) == result.usage.prompt_tokens
        assert result.prompt_logprobs[0] is None
        scored = [v for v in result.prompt_logprobs[1:] if v is not None]
        assert len(scored) == len(result.prompt_logprobs) - 1
        assert all(v <= 1e-4 and math.isfinite(v) for v in scored)
        assert result.usage.completion_tokens == 0
    # Same prefix, different last word: the plausible one must be far more likely.
    assert likely.prompt_logprobs[-1] > unlikely.prompt_logprobs[-1] + 3  # type: ignore[index,operator]


async def test_logprob_start_skips_the_leading_tokens(backend: Backend) -> None:
    if not backend.capabilities.prompt_logprobs:
        pytest.skip("backend has no prompt logprobs")
    [result] = await backend.generate(
        [Prompt.from_text("One two three four five six seven")],
        SamplingParams(temperature=0, max_tokens=0),
        prompt_logprobs=True,
        logprob_start=3,
    )
    assert result.prompt_logprobs is not None
    assert all(v is None for v in result.prompt_logprobs[:3])
    assert all(v is not None for v in result.prompt_logprobs[3:])


async def test_a_batch_sharing_a_long_prefix_computes_it_once(backend: Backend) -> None:
    if not backend.capabilities.prefix_cache:
        pytest.skip("backend has no prefix cache")
    prefix_ids = backend.tokenize(f"[batch-{backend.name}] " + PARAGRAPH * 10)[:300]
    questions = [f" Question {i}: what do the farmers grow? Answer:" for i in range(8)]
    prompts = [Prompt.from_token_ids(prefix_ids + backend.tokenize(q)) for q in questions]
    results = await backend.generate(prompts, SamplingParams(temperature=0, max_tokens=4))
    cached = [r.usage.cached_tokens for r in results]
    assert sum(c >= 0.9 * len(prefix_ids) for c in cached) >= 7, cached


async def test_a_warmed_prefix_is_reused_by_every_later_prompt(backend: Backend) -> None:
    if not backend.capabilities.prefix_cache:
        pytest.skip("backend has no prefix cache")
    prefix_ids = backend.tokenize(f"[warm-{backend.name}] " + PARAGRAPH * 6)[:200]
    warmed = await backend.warm_prefix(Prompt.from_token_ids(prefix_ids))
    assert warmed >= len(prefix_ids) - 1
    prompts = [Prompt.from_token_ids(prefix_ids + backend.tokenize(f" Fact {i}:")) for i in range(4)]
    results = await backend.generate(prompts, SamplingParams(temperature=0, max_tokens=4))
    assert all(r.usage.cached_tokens >= 0.9 * len(prefix_ids) for r in results), [
        r.usage.cached_tokens for r in results
    ]


async def test_streaming_yields_the_same_text_piece_by_piece(backend: Backend) -> None:
    prompt = Prompt.from_text("Name three colours:")
    sampling = SamplingParams(temperature=0, max_tokens=20)
    [whole] = await backend.generate([prompt], sampling)
    chunks = [chunk async for chunk in backend.stream(prompt, sampling)]
    assert len([c for c in chunks if c.text]) >= 3
    assert "".join(c.text for c in chunks) == whole.text
    assert all(c.finish_reason is None for c in chunks[:-1])
    last = chunks[-1]
    assert last.finish_reason in ("stop", "length")
    assert last.usage is not None and last.usage.completion_tokens == whole.usage.completion_tokens


async def test_input_embeddings_of_a_prompt_act_like_its_tokens(embeds_backend: Backend) -> None:
    if not embeds_backend.capabilities.input_embeds:
        pytest.skip("backend takes no input embeddings")
    from safetensors import safe_open

    text = "The capital of France is"
    ids = embeds_backend.tokenize(text)
    table = _embedding_table(embeds_backend)
    with safe_open(str(table), framework="pt") as weights:
        embed = weights.get_tensor("model.embed_tokens.weight").float()
    [by_ids] = await embeds_backend.generate([Prompt.from_token_ids(ids)], GREEDY)
    [by_embeds] = await embeds_backend.generate([Prompt.from_embeds(embed[ids])], GREEDY)
    assert by_embeds.text == by_ids.text
    assert by_embeds.usage.prompt_tokens == len(ids)


def _embedding_table(backend: Backend):
    """The served model's weights file: PROMPTFOLD_CONTRACT_MODEL_DIR (GPU machine) or the packaged SmolLM2."""
    import os
    from pathlib import Path

    from backend.models import smollm2_folder

    folder = os.environ.get("PROMPTFOLD_CONTRACT_MODEL_DIR")
    return (Path(folder) if folder else smollm2_folder()) / "model.safetensors"


async def test_an_empty_prompt_is_refused_clearly(backend: Backend) -> None:
    with pytest.raises((UnsupportedRequest, BackendError)):
        await backend.generate([Prompt.from_token_ids([])], GREEDY)


async def test_a_prompt_longer_than_the_context_is_refused_clearly(backend: Backend) -> None:
    limit = backend.capabilities.max_context_tokens or 8192
    with pytest.raises((UnsupportedRequest, BackendError)):
        await backend.generate([Prompt.from_token_ids([42] * (limit + 10))], GREEDY)
