"""Tool calling as OpenAI's API describes it: tool_choice none / auto / required / named, valid
arguments, streamed deltas, and a history with calls and results."""

from __future__ import annotations

import json

import httpx
import openai
import pytest

WEATHER = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "maxLength": 30},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
    },
    "required": ["city", "unit"],
}
TOOLS = [
    {
        "type": "function",
        "function": {"name": "get_weather", "description": "The weather in a city", "parameters": WEATHER},
    },
    {
        "type": "function",
        "function": {
            "name": "get_time",
            "description": "The local time in a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string", "maxLength": 30}},
                "required": ["city"],
            },
        },
    },
]
ASK = [{"role": "user", "content": "What is the weather in Paris?"}]
NAMED = {"type": "function", "function": {"name": "get_weather"}}

jsonschema = pytest.importorskip("jsonschema")  # the answers are validated with it


def _valid_call(call: object) -> dict:
    assert call.type == "function" and call.id  # type: ignore[attr-defined]
    arguments = json.loads(call.function.arguments)  # type: ignore[attr-defined]
    schema = WEATHER if call.function.name == "get_weather" else TOOLS[1]["function"]["parameters"]  # type: ignore[attr-defined,index]
    jsonschema.validate(arguments, schema)
    return arguments


def test_a_named_tool_choice_gets_one_valid_call(client: openai.OpenAI, model: str) -> None:
    r = client.chat.completions.create(
        model=model, messages=ASK, tools=TOOLS, tool_choice=NAMED, max_tokens=40, temperature=0
    )
    message = r.choices[0].message
    assert r.choices[0].finish_reason in ("tool_calls", "stop")  # OpenAI says stop for a named choice
    assert message.tool_calls and len(message.tool_calls) == 1
    assert message.tool_calls[0].function.name == "get_weather"
    _valid_call(message.tool_calls[0])


def test_required_gets_at_least_one_valid_call(client: openai.OpenAI, model: str) -> None:
    r = client.chat.completions.create(
        model=model,
        messages=ASK,
        tools=TOOLS,
        tool_choice="required",
        max_tokens=60,
        temperature=0,
        parallel_tool_calls=False,
    )
    calls = r.choices[0].message.tool_calls
    assert calls and len(calls) == 1 and r.choices[0].finish_reason == "tool_calls"
    _valid_call(calls[0])


def test_none_answers_in_text(client: openai.OpenAI, model: str) -> None:
    r = client.chat.completions.create(
        model=model, messages=ASK, tools=TOOLS, tool_choice="none", max_tokens=6
    )
    assert not r.choices[0].message.tool_calls and r.choices[0].message.content


def test_auto_answers_in_text_or_with_valid_calls(client: openai.OpenAI, model: str) -> None:
    r = client.chat.completions.create(model=model, messages=ASK, tools=TOOLS, max_tokens=40, temperature=0)
    message = r.choices[0].message
    for call in message.tool_calls or []:
        _valid_call(call)
    assert message.tool_calls or message.content


def test_tool_calls_stream_as_deltas(client: openai.OpenAI, model: str) -> None:
    chunks = list(
        client.chat.completions.create(
            model=model,
            messages=ASK,
            tools=TOOLS,
            tool_choice=NAMED,
            max_tokens=40,
            temperature=0,
            stream=True,
        )
    )
    deltas = [d for c in chunks if c.choices for d in c.choices[0].delta.tool_calls or []]
    assert (
        deltas and deltas[0].id and deltas[0].function.name == "get_weather" and deltas[0].type == "function"
    )
    arguments = "".join(d.function.arguments or "" for d in deltas if d.index == 0)
    jsonschema.validate(json.loads(arguments), WEATHER)
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] in ("tool_calls", "stop")


def test_a_history_with_calls_and_results_is_answered(client: openai.OpenAI, model: str) -> None:
    history = [
        *ASK,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris", "unit": "celsius"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "21 degrees and sunny"},
    ]
    r = client.chat.completions.create(
        model=model, messages=history, tools=TOOLS, tool_choice="none", max_tokens=12, temperature=0
    )
    assert r.choices[0].message.content


def test_a_tool_choice_naming_an_unknown_function_is_a_400(client: openai.OpenAI, model: str) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model=model,
            messages=ASK,
            tools=TOOLS,
            tool_choice={"type": "function", "function": {"name": "nope"}},
            max_tokens=4,
        )
    assert caught.value.body["param"] == "tool_choice"  # type: ignore[index]


def test_tool_choice_without_tools_is_a_400(http: httpx.Client, model: str) -> None:
    response = http.post(
        "/chat/completions", json={"model": model, "messages": ASK, "tool_choice": "required"}
    )
    assert response.status_code == 400 and response.json()["error"]["param"] == "tool_choice"
