"""The real `openai` client against the real proxy process (`promptfold serve`) on the embedded SmolLM2."""

from __future__ import annotations

import time

import httpx
import openai
import pytest

CHAT = [{"role": "user", "content": "What is 2+2?"}]


@pytest.fixture(scope="module")
def client(proxy_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=proxy_url, api_key="unused", max_retries=0)


def test_chat_gets_a_real_answer_with_usage_and_report(client: openai.OpenAI) -> None:
    response = client.chat.completions.create(model="default", messages=CHAT, temperature=0, max_tokens=32)
    answer = response.choices[0].message.content
    assert answer and "4" in answer
    assert response.choices[0].finish_reason == "stop"
    assert response.model == "SmolLM2-135M-Instruct"
    assert response.usage is not None and response.usage.prompt_tokens > 20
    assert response.usage.total_tokens == response.usage.prompt_tokens + response.usage.completion_tokens
    report = response.model_extra["promptfold"]
    assert report["backend"] == "local" and report["plan"] == "plain"


def test_report_headers_accompany_the_answer(client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(model="default", messages=CHAT, max_tokens=4)
    assert raw.headers["x-promptfold-backend"] == "local"
    assert int(raw.headers["x-promptfold-prompt-tokens"]) == raw.parse().usage.prompt_tokens


def test_streamed_chunks_arrive_one_by_one_and_the_last_has_the_finish_reason(client: openai.OpenAI) -> None:
    arrivals: list[tuple[float, object]] = []
    stream = client.chat.completions.create(
        model="default",
        messages=[{"role": "user", "content": "Write a short poem about the sea."}],
        max_tokens=24,
        temperature=0,
        stream=True,
    )
    for chunk in stream:
        arrivals.append((time.perf_counter(), chunk))
    chunks = [c for _, c in arrivals]
    texts = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(texts) >= 5
    assert chunks[0].choices[0].delta.role == "assistant"
    assert all(c.choices[0].finish_reason is None for c in chunks[:-1])
    assert chunks[-1].choices[0].finish_reason in ("stop", "length")
    # Not buffered: at ~17 tokens/s, the first text arrives well before the last chunk.
    first_text_at = next(t for t, c in arrivals if c.choices and c.choices[0].delta.content)
    assert arrivals[-1][0] - first_text_at > 0.2


def test_streamed_text_equals_the_unstreamed_answer(client: openai.OpenAI) -> None:
    kwargs = dict(model="default", messages=CHAT, max_tokens=24, temperature=0)
    whole = client.chat.completions.create(**kwargs).choices[0].message.content
    pieces = [
        c.choices[0].delta.content or ""
        for c in client.chat.completions.create(**kwargs, stream=True)
        if c.choices
    ]
    assert "".join(pieces) == whole


def test_stream_usage_chunk_when_asked(client: openai.OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(
            model="default", messages=CHAT, max_tokens=6, stream=True, stream_options={"include_usage": True}
        )
    )
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens <= 6


def test_completions_route_continues_text(client: openai.OpenAI) -> None:
    response = client.completions.create(
        model="default", prompt="The capital of France is", max_tokens=8, temperature=0
    )
    assert "Paris" in response.choices[0].text
    assert response.usage is not None and response.usage.prompt_tokens == 5


def test_completions_take_a_batch_of_prompts(client: openai.OpenAI) -> None:
    response = client.completions.create(
        model="default",
        prompt=["The capital of France is", "The capital of Italy is"],
        max_tokens=6,
        temperature=0,
    )
    assert [c.index for c in response.choices] == [0, 1]
    assert "Paris" in response.choices[0].text and "Rome" in response.choices[1].text


def test_n_choices_share_one_batch(client: openai.OpenAI) -> None:
    response = client.chat.completions.create(
        model="default", messages=CHAT, max_tokens=8, temperature=1.0, n=3
    )
    assert [c.index for c in response.choices] == [0, 1, 2]


def test_models_lists_the_served_model_and_its_aliases(client: openai.OpenAI) -> None:
    ids = [m.id for m in client.models.list()]
    assert ids == ["SmolLM2-135M-Instruct", "default", "promptfold"]
    assert client.models.retrieve("SmolLM2-135M-Instruct").id == "SmolLM2-135M-Instruct"


def test_unknown_request_fields_pass_through_and_are_reported(client: openai.OpenAI) -> None:
    response = client.chat.completions.create(
        model="default",
        messages=CHAT,
        max_tokens=4,
        frequency_penalty=0.5,
        user="someone",
        extra_body={"mirostat_tau": 5.0},
    )
    notes = response.model_extra["promptfold"]["notes"]
    assert any("mirostat_tau" in n for n in notes)
    assert not any("user" in n for n in notes)  # describes the client; not forwarded
    assert not any("frequency_penalty" in n for n in notes)  # the local engine honours it now


def test_bypass_header_skips_promptfold(client: openai.OpenAI) -> None:
    response = client.chat.completions.create(
        model="default", messages=CHAT, max_tokens=4, extra_headers={"x-promptfold-bypass": "1"}
    )
    assert any("bypassed" in n for n in response.model_extra["promptfold"]["notes"])


# --- bad requests: status and OpenAI error body -----------------------------------------------------


def _error(response: httpx.Response) -> dict:
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["message"]
    return body["error"]


def test_malformed_json_is_a_400(proxy_url: str) -> None:
    response = httpx.post(
        f"{proxy_url}/chat/completions",
        content=b'{"model": "default", "messages": [',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 400
    assert _error(response)["code"] == "invalid_json"


def test_missing_messages_is_a_400_naming_the_parameter(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="default", messages=[])  # type: ignore[arg-type]
    assert caught.value.status_code == 400
    assert caught.value.body["param"] == "messages"  # type: ignore[index]
    response = httpx.post(f"{caught.value.request.url}", json={"model": "default"})
    assert response.status_code == 400
    assert _error(response) == {
        "message": "Missing required parameter: 'messages'.",
        "type": "invalid_request_error",
        "param": "messages",
        "code": "missing_required_parameter",
    }


def test_negative_max_tokens_is_a_400(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="default", messages=CHAT, max_tokens=-5)
    assert caught.value.body["param"] == "max_tokens"  # type: ignore[index]


def test_unknown_model_is_a_404(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="gpt-17", messages=CHAT)
    assert caught.value.body["code"] == "model_not_found"  # type: ignore[index]


def test_unknown_promptfold_option_is_a_400(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="default", messages=CHAT, extra_body={"promptfold": {"compres": {"rate": 0.5}}}
        )
    assert "compres" in caught.value.body["param"]  # type: ignore[index]


def test_prompt_longer_than_the_context_is_a_422(client: openai.OpenAI) -> None:
    with pytest.raises(openai.UnprocessableEntityError) as caught:
        client.completions.create(model="default", prompt=[42] * 9000, max_tokens=1)
    assert "8191" in caught.value.body["message"]  # type: ignore[index]


def test_unknown_route_is_a_404_with_an_openai_body(proxy_url: str) -> None:
    response = httpx.get(f"{proxy_url}/nothing-here")
    assert response.status_code == 404
    _error(response)


def test_metrics_count_requests_and_tokens(proxy_url: str, client: openai.OpenAI) -> None:
    client.chat.completions.create(model="default", messages=CHAT, max_tokens=4)
    text = httpx.get(proxy_url.removesuffix("/v1") + "/metrics").text
    assert 'promptfold_requests_total{route="chat",status="200"}' in text
    assert "promptfold_request_latency_seconds_bucket" in text
    prompt_line = next(
        line for line in text.splitlines() if line.startswith("promptfold_prompt_tokens_total")
    )
    assert float(prompt_line.split()[-1]) > 0


def test_answer_logprobs_are_the_engines_own_scores_of_those_tokens(client: openai.OpenAI) -> None:
    prompt = "The capital of France is"
    answer = client.completions.create(
        model="default", prompt=prompt, max_tokens=2, temperature=0, logprobs=0
    )
    generated = answer.choices[0].logprobs
    # The engine scoring prompt + answer (prefill only) gives each answer token the same logprob.
    scored = (
        client.completions.create(
            model="default", prompt=prompt + answer.choices[0].text, max_tokens=0, echo=True, logprobs=0
        )
        .choices[0]
        .logprobs
    )
    n = len(generated.tokens)
    assert n == answer.usage.completion_tokens == 2  # " Paris", ".": the same tokens when re-read
    assert scored.tokens[-n:] == generated.tokens
    for made, rescored in zip(generated.token_logprobs, scored.token_logprobs[-n:], strict=True):
        assert abs(made - rescored) < 0.05


def test_stream_headers_leave_out_counts_known_only_at_the_end(client: openai.OpenAI) -> None:
    with client.chat.completions.with_streaming_response.create(
        model="default", messages=CHAT, max_tokens=2, stream=True
    ) as response:
        assert response.headers["x-promptfold-backend"] == "local"
        assert "x-promptfold-prompt-tokens" not in response.headers
        assert response.headers.get("x-request-id")
        chunks = [line for line in response.iter_lines() if line.startswith("data: {")]
    assert '"promptfold"' in chunks[-1] or '"promptfold"' in chunks[-2]
