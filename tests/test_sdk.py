"""The SDK against the embedded engine: Middleware.chat/achat/stream, and wrap() of real openai clients."""

from __future__ import annotations

import openai
import pytest

from middleware import Middleware
from middleware.sdk import InvalidChatRequest


@pytest.fixture(scope="module")
def mw(local_backend):
    middleware = Middleware(local_backend)
    yield middleware
    middleware.close()


def test_chat_answers_with_usage_and_a_report(mw: Middleware) -> None:
    reply = mw.chat("What is the capital of France?", temperature=0, max_tokens=12)
    assert "Paris" in reply.text
    assert reply.usage.prompt_tokens > 20 and reply.usage.completion_tokens <= 12
    assert reply.report.plan == "plain" and reply.report.backend == "local"


def test_stream_yields_the_same_text_piece_by_piece(mw: Middleware) -> None:
    whole = mw.chat("Name three colours.", temperature=0, max_tokens=16).text
    pieces = list(mw.stream("Name three colours.", temperature=0, max_tokens=16))
    assert len(pieces) >= 3 and "".join(pieces) == whole
    assert mw.last_report.completion_tokens > 0


async def test_async_chat_and_stream(mw: Middleware) -> None:
    reply = await mw.achat("What is 2+2?", temperature=0, max_tokens=16)
    assert "4" in reply.text
    pieces = [p async for p in mw.astream("What is 2+2?", temperature=0, max_tokens=16)]
    assert "".join(pieces) == reply.text


def test_per_call_options_override_defaults_and_unknown_ones_fail(mw: Middleware) -> None:
    reply = mw.chat("Hi", max_tokens=2, organize="sot")
    assert reply.report.details["organize"]["requested"] == "sot"  # the call's option reached the executor
    with pytest.raises(ValueError):
        mw.chat([], max_tokens=2)


def test_wrapped_client_runs_the_pipeline_and_returns_openai_types(mw: Middleware, proxy_url: str) -> None:
    client = mw.wrap(openai.OpenAI(base_url=proxy_url, api_key="unused", max_retries=0))
    reply = client.chat.completions.create(
        model="default", messages=[{"role": "user", "content": "What is 2+2?"}], temperature=0, max_tokens=16
    )
    assert isinstance(reply, openai.types.chat.ChatCompletion)
    assert "4" in reply.choices[0].message.content
    report = reply.model_extra["promptfold"]
    assert report["backend"] == "openai"  # the SDK's pipeline called the client's server
    chunks = list(
        client.chat.completions.create(
            model="default", messages=[{"role": "user", "content": "Say hi"}], max_tokens=6, stream=True
        )
    )
    assert all(isinstance(c, openai.types.chat.ChatCompletionChunk) for c in chunks)
    assert chunks[-1].choices[0].finish_reason in ("stop", "length")
    assert client.models.list().data[0].id == "SmolLM2-135M-Instruct"  # untouched routes delegate
    with pytest.raises(InvalidChatRequest, match="messages"):
        client.chat.completions.create(model="default", messages=[])


async def test_wrapped_async_client(mw: Middleware, proxy_url: str) -> None:
    client = mw.wrap(openai.AsyncOpenAI(base_url=proxy_url, api_key="unused", max_retries=0))
    reply = await client.chat.completions.create(
        model="default", messages=[{"role": "user", "content": "What is 2+2?"}], temperature=0, max_tokens=16
    )
    assert "4" in reply.choices[0].message.content
    stream = await client.chat.completions.create(
        model="default", messages=[{"role": "user", "content": "Say hi"}], max_tokens=6, stream=True
    )
    chunks = [c async for c in stream]
    assert chunks[-1].choices[0].finish_reason in ("stop", "length")


LONG_CONTEXT = (
    "The library on Elm Street opened in 1987 with 12,500 books and two reading rooms. Over the years the "
    "town council paid for a new wing, a children's corner and a small cafe, and by 2020 the collection had "
    "grown to 48,300 volumes, most of them donated by local families. Volunteers run a reading club every "
    "Tuesday evening, and the building is closed on Sundays and on public holidays."
)


def test_compress_alone_gives_a_typed_result_at_the_requested_rate(mw: Middleware) -> None:
    from middleware.compress import CompressionResult

    result = mw.compress(LONG_CONTEXT, rate=0.5)
    assert isinstance(result, CompressionResult) and 0.4 <= result.ratio <= 0.6
    assert result.compressed_tokens < result.original_tokens and "1987" in LONG_CONTEXT
    system = {"role": "system", "content": "You answer in one short sentence."}
    user = {"role": "user", "content": LONG_CONTEXT + "\n\nWhen did the library open?"}
    chat = mw.compress([system, user], rate=0.5)
    assert chat.messages is not None and chat.messages[0] == system  # the system prompt stays
    assert chat.messages[1]["content"].endswith("When did the library open?")  # so does the question
    with pytest.raises(ValueError, match="rate"):
        mw.compress("some text", rate=2)


def test_wrapped_client_compresses_long_context_when_asked(mw: Middleware, proxy_url: str) -> None:
    client = mw.wrap(openai.OpenAI(base_url=proxy_url, api_key="unused", max_retries=0))
    messages = [{"role": "user", "content": LONG_CONTEXT + "\n\nWhen did the library open?"}]
    reply = client.chat.completions.create(
        model="default",
        messages=messages,
        max_tokens=4,
        extra_body={"promptfold": {"compress": {"rate": 0.5}}},
    )
    [stage] = [s for s in reply.model_extra["promptfold"]["stages"] if s["stage"] == "compress"]
    assert stage["applied"] and stage["tokens_out"] < stage["tokens_in"]
    plain = client.chat.completions.create(model="default", messages=messages, max_tokens=4)
    assert reply.usage.prompt_tokens < plain.usage.prompt_tokens  # what reached the server was shorter
