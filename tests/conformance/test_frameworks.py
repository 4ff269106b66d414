"""LangChain and LiteLLM against the proxy, configured only with its base URL."""

from __future__ import annotations

import os

import pydantic
import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no fetch of LiteLLM's price list


class Weather(pydantic.BaseModel):
    """The weather report for a city."""

    city: str = pydantic.Field(max_length=30)
    sunny: bool


@pytest.fixture(scope="module")
def chat(base_url: str, model: str):
    langchain_openai = pytest.importorskip("langchain_openai")
    return langchain_openai.ChatOpenAI(
        base_url=base_url, api_key="unused", model=model, temperature=0, max_tokens=40, max_retries=0
    )


def test_langchain_invokes_and_streams(chat) -> None:
    answer = chat.invoke("What is 2+2?")
    assert answer.content
    pieces = [piece.content for piece in chat.stream("What is 2+2?")]
    assert "".join(pieces) == answer.content


def test_langchain_bind_tools_gets_a_forced_call(chat) -> None:
    from langchain_core.tools import tool

    @tool
    def get_weather(city: str) -> str:
        """The weather in a city."""
        return "sunny"

    message = chat.bind_tools([get_weather], tool_choice="get_weather").invoke(
        "What is the weather in Paris?"
    )
    assert message.tool_calls and message.tool_calls[0]["name"] == "get_weather"
    assert isinstance(message.tool_calls[0]["args"].get("city"), str)


@pytest.mark.parametrize("method", ["json_schema", "function_calling"])
def test_langchain_structured_output_returns_the_model(chat, method: str) -> None:
    result = chat.with_structured_output(Weather, method=method).invoke("Report the weather in Paris.")
    assert isinstance(result, Weather)


def test_litellm_completes_and_streams(base_url: str, model: str) -> None:
    litellm = pytest.importorskip("litellm")
    kwargs = dict(
        model=f"openai/{model}",
        api_base=base_url,
        api_key="unused",
        messages=[{"role": "user", "content": "What is 2+2?"}],
        max_tokens=6,
        temperature=0,
    )
    whole = litellm.completion(**kwargs)
    assert whole.choices[0].message.content
    streamed = "".join(c.choices[0].delta.content or "" for c in litellm.completion(**kwargs, stream=True))
    assert streamed == whole.choices[0].message.content


def test_litellm_passes_tools_through(base_url: str, model: str) -> None:
    litellm = pytest.importorskip("litellm")
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": {
                    "type": "object",
                    "properties": {"city": {"type": "string", "maxLength": 30}},
                    "required": ["city"],
                },
            },
        }
    ]
    r = litellm.completion(
        model=f"openai/{model}",
        api_base=base_url,
        api_key="unused",
        messages=[{"role": "user", "content": "Weather in Paris?"}],
        tools=tools,
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        max_tokens=40,
        temperature=0,
    )
    assert r.choices[0].message.tool_calls[0].function.name == "get_weather"
