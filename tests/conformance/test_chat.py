"""Chat completions as OpenAI's API reference describes them, seen from the `openai` client."""

from __future__ import annotations

import httpx
import openai
import pytest

ASK = [{"role": "user", "content": "What is the capital of France?"}]


def test_a_chat_answer_has_text_usage_and_a_finish_reason(client: openai.OpenAI, model: str) -> None:
    r = client.chat.completions.create(model=model, messages=ASK, max_tokens=8, temperature=0)
    choice = r.choices[0]
    assert r.object == "chat.completion" and r.id
    assert choice.message.role == "assistant" and choice.message.content
    assert choice.finish_reason in ("stop", "length")
    assert r.usage.completion_tokens <= 8
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens


def test_max_tokens_cuts_the_answer_with_finish_reason_length(client: openai.OpenAI, model: str) -> None:
    r = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "Write a long story."}],
        max_tokens=3,
        temperature=0,
    )
    assert r.choices[0].finish_reason == "length" and r.usage.completion_tokens == 3


def test_max_completion_tokens_is_the_same_budget(client: openai.OpenAI, model: str) -> None:
    r = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "Write a long story."}], max_completion_tokens=2
    )
    assert r.usage.completion_tokens == 2


def test_a_stop_sequence_ends_the_answer_before_it(client: openai.OpenAI, model: str) -> None:
    free = client.chat.completions.create(model=model, messages=ASK, max_tokens=8, temperature=0)
    text = free.choices[0].message.content or ""
    word = text.split()[1] if len(text.split()) > 1 else text
    cut = client.chat.completions.create(model=model, messages=ASK, max_tokens=8, temperature=0, stop=[word])
    assert word not in (cut.choices[0].message.content or "")
    assert cut.choices[0].finish_reason == "stop"


def test_streaming_sends_role_then_deltas_then_finish_and_usage(client: openai.OpenAI, model: str) -> None:
    chunks = list(
        client.chat.completions.create(
            model=model,
            messages=ASK,
            max_tokens=6,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] in ("stop", "length") and all(f is None for f in finishes[:-1])
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    whole = client.chat.completions.create(model=model, messages=ASK, max_tokens=6, temperature=0)
    assert text == whole.choices[0].message.content
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens


def test_n_choices_count_the_prompt_once(client: openai.OpenAI, model: str) -> None:
    one = client.chat.completions.create(model=model, messages=ASK, max_tokens=4, temperature=0)
    three = client.chat.completions.create(model=model, messages=ASK, max_tokens=4, temperature=0, n=3)
    assert [c.index for c in three.choices] == [0, 1, 2]
    assert three.usage.prompt_tokens == one.usage.prompt_tokens


def test_n_choices_under_a_seed_differ_and_repeat(client: openai.OpenAI, model: str, root_url: str) -> None:
    kwargs = dict(model=model, messages=ASK, max_tokens=8, temperature=1.0, n=3, seed=7)
    first = [c.message.content for c in client.chat.completions.create(**kwargs).choices]
    assert len(set(first)) > 1
    if not httpx.get(f"{root_url}/health").json()["capabilities"]["seeded_sampling"]:
        pytest.skip(
            "the backend does not promise to repeat a sample for a seed (SGLang without deterministic inference)"
        )
    again = [c.message.content for c in client.chat.completions.create(**kwargs).choices]
    assert first == again


def test_n_choices_stream_with_their_index(client: openai.OpenAI, model: str) -> None:
    chunks = list(
        client.chat.completions.create(
            model=model, messages=ASK, max_tokens=4, temperature=1.0, n=2, stream=True
        )
    )
    finished = sorted(c.choices[0].index for c in chunks if c.choices and c.choices[0].finish_reason)
    assert finished == [0, 1]
    roles = sorted(c.choices[0].index for c in chunks if c.choices and c.choices[0].delta.role)
    assert roles == [0, 1]


def test_logprobs_come_one_per_token_with_the_top_alternatives(client: openai.OpenAI, model: str) -> None:
    r = client.chat.completions.create(
        model=model, messages=ASK, max_tokens=5, temperature=0, logprobs=True, top_logprobs=3
    )
    content = r.choices[0].logprobs.content
    assert len(content) == r.usage.completion_tokens
    assert "".join(t.token for t in content) == r.choices[0].message.content
    for entry in content:
        assert entry.logprob <= 0 and len(entry.top_logprobs) == 3
        assert entry.top_logprobs[0].logprob >= entry.top_logprobs[-1].logprob
        assert entry.bytes == list(entry.token.encode())
        assert abs(entry.logprob - entry.top_logprobs[0].logprob) < 1e-3  # greedy took the best


def test_streamed_logprobs_match_the_tokens(client: openai.OpenAI, model: str) -> None:
    chunks = list(
        client.chat.completions.create(
            model=model, messages=ASK, max_tokens=4, temperature=0, logprobs=True, stream=True
        )
    )
    entries = [
        t for c in chunks if c.choices and c.choices[0].logprobs for t in c.choices[0].logprobs.content
    ]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert entries and "".join(t.token for t in entries) == text


def test_logit_bias_forces_and_bans_tokens(client: openai.OpenAI, model: str, http: httpx.Client) -> None:
    token = http.post("/tokenize", json={"model": model, "prompt": " banana"}).json()["tokens"][0]
    piece = http.post("/detokenize", json={"model": model, "tokens": [token]}).json()["prompt"]
    r = client.chat.completions.create(
        model=model, messages=ASK, max_tokens=3, temperature=0, logit_bias={str(token): 100}
    )
    assert r.choices[0].message.content == piece * 3
    usual = client.chat.completions.create(
        model=model, messages=ASK, max_tokens=1, temperature=0, logprobs=True
    )
    first = usual.choices[0].logprobs.content[0].token
    first_id = http.post("/tokenize", json={"model": model, "prompt": first}).json()["tokens"][0]
    banned = client.chat.completions.create(
        model=model, messages=ASK, max_tokens=1, temperature=0, logit_bias={str(first_id): -100}
    )
    assert banned.choices[0].message.content != first


def test_sampling_extensions_are_accepted(client: openai.OpenAI, model: str) -> None:
    r = client.chat.completions.create(
        model=model,
        messages=ASK,
        max_tokens=6,
        temperature=0.7,
        seed=1,
        frequency_penalty=0.5,
        presence_penalty=0.5,
        extra_body={"top_k": 20, "min_p": 0.05, "repetition_penalty": 1.1, "min_tokens": 6},
    )
    assert r.usage.completion_tokens == 6  # min_tokens kept the end away


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("presence_penalty", 5),
        ("frequency_penalty", -3),
        ("temperature", 3),
        ("top_p", 0),
        ("top_logprobs", 30),
        ("max_tokens", -1),
        ("n", 0),
        ("max_tokens", "16"),
        ("max_tokens", True),
        ("stream", "yes"),
        ("temperature", "hot"),
        ("logit_bias", {"1": 300}),
    ],
)
def test_an_out_of_range_or_mistyped_field_is_a_400_naming_it(
    http: httpx.Client, model: str, field: str, value: object
) -> None:
    body = {
        "model": model,
        "messages": ASK,
        "max_tokens": 2,
        "logprobs": field == "top_logprobs",
        field: value,
    }
    response = http.post("/chat/completions", json=body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == field


def test_a_request_without_model_is_served(http: httpx.Client) -> None:
    response = http.post("/chat/completions", json={"messages": ASK, "max_tokens": 2})
    assert response.status_code == 200, response.text


def test_an_unknown_model_is_a_404(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="no-such-model", messages=ASK, max_tokens=2)


def test_developer_and_custom_roles_and_content_parts_are_taken(client: openai.OpenAI, model: str) -> None:
    r = client.chat.completions.create(
        model=model,
        messages=[
            {"role": "developer", "content": "Answer briefly."},
            {"role": "user", "content": [{"type": "text", "text": "What is 2+2?"}]},
        ],
        max_tokens=4,
    )
    assert r.choices[0].message.content is not None
    custom = client.chat.completions.create(
        model=model,
        messages=[{"role": "narrator", "content": "It rains."}, *ASK],
        max_tokens=2,  # type: ignore[list-item]
    )
    assert custom.choices[0].finish_reason in ("stop", "length")


def test_every_response_has_a_request_id(client: openai.OpenAI, model: str) -> None:
    raw = client.chat.completions.with_raw_response.create(model=model, messages=ASK, max_tokens=1)
    assert raw.headers.get("x-request-id")
