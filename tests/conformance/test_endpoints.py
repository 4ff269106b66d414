"""The other routes: models, embeddings, tokenize / detokenize, and the Responses API."""

from __future__ import annotations

import json

import httpx
import openai
import pytest


def test_models_lists_every_name_it_accepts(client: openai.OpenAI, http: httpx.Client) -> None:
    listed = http.get("/models").json()["data"]
    names = [m["id"] for m in listed]
    assert "default" in names
    for card in listed:
        assert card["object"] == "model" and card["root"] and card["max_model_len"] > 0
        assert client.models.retrieve(card["id"]).id == card["id"]


def test_embeddings_come_as_floats_and_as_base64(client: openai.OpenAI) -> None:
    floats = client.embeddings.create(model="default", input=["a cat", "a dog"], encoding_format="float")
    packed = client.embeddings.create(model="default", input=["a cat", "a dog"])  # base64 by default
    assert [d.index for d in floats.data] == [0, 1]
    assert len(floats.data[0].embedding) == len(packed.data[0].embedding) > 0
    assert all(
        abs(a - b) < 1e-6 for a, b in zip(floats.data[1].embedding, packed.data[1].embedding, strict=True)
    )
    assert floats.usage.prompt_tokens > 0


def test_embeddings_of_close_texts_are_closer(client: openai.OpenAI) -> None:
    data = client.embeddings.create(model="default", input=["a cat", "a kitten", "stock market"]).data
    cat, kitten, market = (d.embedding for d in data)

    def dot(a: list[float], b: list[float]) -> float:
        return sum(x * y for x, y in zip(a, b, strict=True))

    assert dot(cat, kitten) > dot(cat, market)


def test_tokenize_and_detokenize_round_trip(http: httpx.Client, model: str) -> None:
    root = str(http.base_url).rstrip("/").removesuffix("/v1")
    tokens = httpx.post(
        f"{root}/tokenize", json={"model": model, "prompt": "Hello world", "return_token_strs": True}
    ).json()
    assert (
        tokens["count"] == len(tokens["tokens"]) == len(tokens["token_strs"]) and tokens["max_model_len"] > 0
    )
    text = httpx.post(f"{root}/detokenize", json={"model": model, "tokens": tokens["tokens"]}).json()
    assert text["prompt"] == "Hello world"


def test_tokenize_renders_chat_messages_like_the_chat_route(
    http: httpx.Client, client: openai.OpenAI, model: str
) -> None:
    messages = [{"role": "user", "content": "What is 2+2?"}]
    counted = http.post("/tokenize", json={"model": model, "messages": messages}).json()["count"]
    served = client.chat.completions.create(model=model, messages=messages, max_tokens=1)
    assert counted == served.usage.prompt_tokens


def test_a_response_from_text_input(client: openai.OpenAI, model: str) -> None:
    r = client.responses.create(
        model=model, input="Say hello.", instructions="Be brief.", max_output_tokens=16
    )
    assert r.object == "response" and r.status in ("completed", "incomplete")
    assert r.output_text and r.usage.output_tokens <= 16


def test_a_response_streams_typed_events(client: openai.OpenAI, model: str) -> None:
    events = list(client.responses.create(model=model, input="Say hello.", max_output_tokens=16, stream=True))
    kinds = [e.type for e in events]
    assert kinds[0] == "response.created" and kinds[-1] in ("response.completed", "response.incomplete")
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    done = next(e for e in events if e.type == "response.output_text.done")
    assert deltas == done.text and deltas
    assert [e.sequence_number for e in events] == list(range(len(events)))


def test_a_response_continues_from_a_previous_one(client: openai.OpenAI, model: str) -> None:
    first = client.responses.create(model=model, input="My name is Ada.", max_output_tokens=8)
    second = client.responses.create(
        model=model, input="What is my name?", previous_response_id=first.id, max_output_tokens=8
    )
    assert second.usage.input_tokens > first.usage.input_tokens


def test_a_response_calls_a_function_tool(client: openai.OpenAI, model: str) -> None:
    tool = {
        "type": "function",
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "maxLength": 30}},
            "required": ["city"],
        },
    }
    r = client.responses.create(
        model=model,
        input="What is the weather in Paris?",
        tools=[tool],
        tool_choice={"type": "function", "name": "get_weather"},
        max_output_tokens=40,
    )
    calls = [item for item in r.output if item.type == "function_call"]
    assert calls and calls[0].name == "get_weather" and "city" in json.loads(calls[0].arguments)
    answer = client.responses.create(
        model=model,
        previous_response_id=r.id,
        input=[{"type": "function_call_output", "call_id": calls[0].call_id, "output": "sunny"}],
        max_output_tokens=8,
    )
    assert answer.output_text


def test_an_unknown_previous_response_is_a_404(client: openai.OpenAI, model: str) -> None:
    with pytest.raises(openai.NotFoundError):
        client.responses.create(
            model=model, input="hi", previous_response_id="resp_nothing", max_output_tokens=2
        )
