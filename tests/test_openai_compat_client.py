"""The OpenAI-compatible client against `tests/fakes/fake_openai.py`, a FAKE OpenAI-compatible server (it
stands in for vLLM, `transformers serve` or a hosted API). Its toy model answers with the last word of
the prompt in capitals."""

from __future__ import annotations

import pytest
import pytest_asyncio

from backend import BackendError, BackendUnavailable, Prompt, SamplingParams, UnsupportedRequest, open_backend
from backend.openai_compat import OpenAICompatBackend
from tests.fakes import free_port, make_tiny_tokenizer, serve_in_thread
from tests.fakes import toy_model as toy
from tests.fakes.fake_openai import FakeOpenAIServer

KEY = "sk-test-key"
GREEDY = SamplingParams(temperature=0, max_tokens=16)


@pytest.fixture(scope="module")
def openai_server():
    server = FakeOpenAIServer(api_key=KEY)
    with serve_in_thread(server.app) as url:
        server.url = url
        yield server


@pytest.fixture
def fake(openai_server):
    openai_server.reset()
    return openai_server


@pytest_asyncio.fixture
async def client(fake):
    backend = OpenAICompatBackend(fake.url + "/v1", api_key=KEY)
    yield backend
    await backend.close()


async def test_messages_go_to_chat_and_text_and_token_ids_to_completions_in_prompt_order(client, fake):
    prompts = [
        Prompt.from_text("name a fruit: apple"),
        Prompt.from_messages([{"role": "user", "content": "say hello"}]),
        Prompt.from_token_ids(toy.tokenize("tokens here")),
    ]
    results = await client.generate(prompts, GREEDY)
    assert [r.text for r in results] == [" APPLE", " HELLO", " HERE"]
    assert sorted(path for path, _ in fake.requests) == [
        "/v1/chat/completions",
        "/v1/completions",
        "/v1/completions",
    ]
    [ids_body] = [body for _, body in fake.requests if isinstance(body.get("prompt"), list)]
    assert ids_body["prompt"] == toy.tokenize("tokens here")
    assert all(body["model"] == "fake-model" for _, body in fake.requests)


async def test_the_model_id_defaults_to_the_first_served_model(client):
    assert client.model_id == ""
    assert await client.connect() == "fake-model"
    assert client.capabilities.max_context_tokens == 512
    given = open_backend("openai://127.0.0.1:1/v1", model_id="given")
    assert given.model_id == "given"
    await given.close()


async def test_sampling_and_extra_fields_reach_the_request_body(client, fake):
    sampling = SamplingParams(
        temperature=0.5, top_p=0.8, max_tokens=7, stop=["\n"], seed=3, extra={"frequency_penalty": 0.2}
    )
    await client.generate([Prompt.from_text("hi there")], sampling)
    [(_, body)] = fake.requests
    assert {
        k: body[k] for k in ("temperature", "top_p", "max_tokens", "stop", "seed", "frequency_penalty")
    } == {
        "temperature": 0.5,
        "top_p": 0.8,
        "max_tokens": 7,
        "stop": ["\n"],
        "seed": 3,
        "frequency_penalty": 0.2,
    }


async def test_finish_reasons_and_cached_tokens_come_from_the_answer(client):
    prompt = Prompt.from_text("the same words again")
    [first] = await client.generate([prompt], SamplingParams(max_tokens=3))
    [second] = await client.generate([prompt], GREEDY)
    assert (first.text, first.finish_reason) == (" AG", "length")
    assert second.finish_reason == "stop"
    assert (first.usage.cached_tokens, second.usage.cached_tokens) == (
        0,
        len(toy.tokenize("the same words again")) - 1,
    )


@pytest.mark.parametrize(
    "prompt",
    [Prompt.from_messages([{"role": "user", "content": "stream hello"}]), Prompt.from_text("stream hello")],
    ids=["chat", "completions"],
)
async def test_streaming_yields_deltas_then_a_last_chunk_with_usage(client, fake, prompt):
    chunks = [chunk async for chunk in client.stream(prompt, GREEDY)]
    assert [c.text for c in chunks[:-1]] == list(" HELLO")
    last = chunks[-1]
    assert (last.text, last.finish_reason) == ("", "stop")
    assert last.usage is not None and last.usage.completion_tokens == len(" HELLO") + 1  # + EOS
    [(_, body)] = fake.requests
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}


async def test_what_the_openai_api_cannot_do_is_refused_before_sending(client, fake):
    with pytest.raises(UnsupportedRequest, match="prompt logprobs"):
        await client.generate([Prompt.from_text("x")], GREEDY, prompt_logprobs=True)
    with pytest.raises(UnsupportedRequest, match="embeddings"):
        await client.generate([Prompt.from_text("x"), Prompt.from_embeds([[0.0] * 4])], GREEDY)
    with pytest.raises(UnsupportedRequest, match="prefix"):
        await client.warm_prefix(Prompt.from_text("x"))
    with pytest.raises(UnsupportedRequest, match="tokenizer="):
        client.tokenize("x")
    assert not client.capabilities.chat_template and not client.capabilities.prompt_logprobs
    assert fake.requests == []


async def test_a_local_tokenizer_renders_and_counts(fake, tmp_path):
    backend = OpenAICompatBackend(fake.url + "/v1", api_key=KEY, tokenizer=make_tiny_tokenizer(tmp_path))
    try:
        assert backend.capabilities.chat_template
        assert (
            backend.apply_chat_template([{"role": "user", "content": "hello"}])
            == "<s><|user|> hello <|assistant|> "
        )
        assert backend.tokenize("hello world") == [8, 9]
    finally:
        await backend.close()


async def test_the_api_key_from_the_environment_is_sent_as_a_bearer_token(fake, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    backend = OpenAICompatBackend(fake.url + "/v1")
    try:
        [result] = await backend.generate([Prompt.from_text("say hello")], GREEDY)
    finally:
        await backend.close()
    assert result.text == " HELLO"
    assert set(fake.auth_headers) == {f"Bearer {KEY}"}


async def test_a_refused_key_is_a_502_that_says_the_upstream_refused_it(fake):
    backend = OpenAICompatBackend(fake.url + "/v1", api_key="sk-wrong", model_id="fake-model")
    try:
        with pytest.raises(
            BackendError, match=r"refused the API key \(HTTP 401\): Incorrect API key"
        ) as caught:
            await backend.generate([Prompt.from_text("hi")], GREEDY)
        assert caught.value.status == 502 and caught.value.backend == "openai"
        health = await backend.health()
        assert not health.ok and "API key" in health.detail
    finally:
        await backend.close()


async def test_a_server_that_is_down_is_unavailable():
    backend = OpenAICompatBackend(f"http://127.0.0.1:{free_port()}/v1", model_id="m")
    try:
        with pytest.raises(BackendUnavailable, match="cannot reach") as caught:
            await backend.generate([Prompt.from_text("hi")], GREEDY)
        assert caught.value.status == 503
        with pytest.raises(BackendUnavailable):
            [c async for c in backend.stream(Prompt.from_text("hi"), GREEDY)]
    finally:
        await backend.close()


async def test_upstream_errors_carry_the_upstream_words(client, fake):
    fake.fail_next = (500, "the engine fell over")
    with pytest.raises(BackendError, match="HTTP 500: the engine fell over"):
        await client.generate([Prompt.from_text("hi")], GREEDY)
    with pytest.raises(UnsupportedRequest, match="maximum context length is 512"):
        await client.generate([Prompt.from_token_ids([65] * 600)], GREEDY)
    fake.fail_next = (503, "overloaded")
    with pytest.raises(BackendUnavailable, match="overloaded"):
        [c async for c in client.stream(Prompt.from_text("hi"), GREEDY)]


async def test_one_failing_prompt_fails_the_batch_with_its_reason(client, fake):
    prompts = [Prompt.from_text("fine"), Prompt.from_token_ids([65] * 600)]
    with pytest.raises(UnsupportedRequest, match="context length"):
        await client.generate(prompts, GREEDY)


async def test_health_is_ok_when_the_models_route_answers(client):
    health = await client.health()
    assert (health.ok, health.backend, health.model) == (True, "openai", "fake-model")


@pytest.mark.slow
async def test_against_promptfolds_own_proxy_on_the_embedded_engine(proxy_url):
    """The real thing on the other side: `promptfold serve --backend local` (SmolLM2 on the CPU)."""
    backend = OpenAICompatBackend(proxy_url, api_key="unused")
    sampling = SamplingParams(temperature=0, max_tokens=4)
    try:
        assert await backend.connect() == "SmolLM2-135M-Instruct"
        by_text, by_chat = await backend.generate(
            [
                Prompt.from_text("The capital of France is"),
                Prompt.from_messages([{"role": "user", "content": "Hi"}]),
            ],
            sampling,
        )
        chunks = [c async for c in backend.stream(Prompt.from_text("The capital of France is"), sampling)]
    finally:
        await backend.close()
    assert "Paris" in by_text.text and by_chat.text
    assert by_text.usage.completion_tokens == 4 and by_text.finish_reason == "length"
    assert "".join(c.text for c in chunks) == by_text.text
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 4
