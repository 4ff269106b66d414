"""Behind an OpenAI-compatible server, the proxy keeps everything both ways: the request history reaches
the server as the client sent it (tool calls, tool results, names, content parts, user, metadata), and
the server's answer comes back whole (tool calls, logprobs, refusal, finish reason, usage details, fields
the proxy has no name for). The server here is a scripted FAKE that answers like vLLM."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse

from backend import open_backend
from middleware.config import Settings
from middleware.server.app import create_app
from middleware.server.background import serve_in_thread as serve_proxy
from tests.fakes import serve_in_thread

CALL = {
    "id": "chatcmpl-tool-1",
    "type": "function",
    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
}
LOGPROBS = {"content": [{"token": "Hi", "logprob": -0.5, "bytes": [72, 105], "top_logprobs": []}]}
ANSWER = {
    "id": "chatcmpl-upstream",
    "object": "chat.completion",
    "created": 1,
    "model": "fake-model",
    "system_fingerprint": "fp_fake",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": None,
                "tool_calls": [CALL],
                "reasoning_content": "think",
            },
            "finish_reason": "tool_calls",
            "stop_reason": 128008,
            "logprobs": LOGPROBS,
        }
    ],
    "usage": {
        "prompt_tokens": 9,
        "completion_tokens": 4,
        "total_tokens": 13,
        "completion_tokens_details": {"reasoning_tokens": 2},
    },
}


class ScriptedServer:
    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.app = FastAPI()
        self.app.get("/v1/models")(self.models)
        self.app.post("/v1/chat/completions")(self.chat)
        self.app.get("/health")(self.models)

    async def models(self) -> dict[str, Any]:
        return {"object": "list", "data": [{"id": "fake-model", "object": "model", "max_model_len": 512}]}

    async def chat(self, request: Request) -> Any:
        body = await request.json()
        self.bodies.append(body)
        if not body.get("stream"):
            return ANSWER
        deltas = [
            {"role": "assistant", "content": ""},
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": CALL["id"],
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": ""},
                    }
                ]
            },
            {"tool_calls": [{"index": 0, "function": {"arguments": '{"city": "Paris"}'}}]},
        ]

        async def events() -> Any:
            for delta in deltas:
                yield f"data: {json.dumps({'choices': [{'index': 0, 'delta': delta, 'finish_reason': None}]})}\n\n"
            yield f"data: {json.dumps({'choices': [{'index': 0, 'delta': {}, 'finish_reason': 'tool_calls'}]})}\n\n"
            yield f"data: {json.dumps({'choices': [], 'usage': ANSWER['usage']})}\n\n"
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")


@pytest.fixture(scope="module")
def scripted():
    server = ScriptedServer()
    with serve_in_thread(server.app) as url:
        backend = open_backend(f"openai://{url.removeprefix('http://')}/v1")
        app = create_app(Settings(), backend=backend, owns_backend=True)
        with serve_proxy(app) as proxy:
            yield server, openai.OpenAI(base_url=proxy + "/v1", api_key="unused", max_retries=0)


HISTORY = [
    {"role": "system", "content": "Be brief."},
    {
        "role": "user",
        "content": [
            {"type": "text", "text": "Weather?"},
            {"type": "image_url", "image_url": {"url": "data:,"}},
        ],
        "name": "ada",
    },
    {"role": "assistant", "content": None, "tool_calls": [CALL]},
    {"role": "tool", "tool_call_id": CALL["id"], "content": "sunny"},
]
TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]


def test_the_history_and_client_fields_reach_the_server_as_sent(scripted) -> None:
    server, client = scripted
    client.chat.completions.create(
        model="fake-model",
        messages=HISTORY,
        tools=TOOLS,
        tool_choice="auto",
        user="u-1",
        metadata={"k": "v"},
        max_tokens=5,
    )
    sent = server.bodies[-1]
    assert sent["messages"] == HISTORY
    assert sent["tools"] == TOOLS and sent["tool_choice"] == "auto"
    assert sent["user"] == "u-1" and sent["metadata"] == {"k": "v"}


def test_the_servers_answer_comes_back_whole(scripted) -> None:
    _, client = scripted
    r = client.chat.completions.create(model="fake-model", messages=HISTORY, tools=TOOLS, max_tokens=5)
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    assert [c.model_dump() for c in choice.message.tool_calls] == [CALL]
    assert choice.message.model_extra["reasoning_content"] == "think"
    assert choice.model_extra["stop_reason"] == 128008
    assert choice.logprobs.model_dump(exclude_none=True)["content"] == LOGPROBS["content"]
    assert r.system_fingerprint == "fp_fake"
    assert r.usage.completion_tokens_details.reasoning_tokens == 2
    assert (r.usage.prompt_tokens, r.usage.completion_tokens) == (9, 4)


def test_streamed_tool_call_deltas_come_through(scripted) -> None:
    _, client = scripted
    chunks = list(
        client.chat.completions.create(
            model="fake-model",
            messages=HISTORY,
            tools=TOOLS,
            max_tokens=5,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    deltas = [d for c in chunks if c.choices for d in c.choices[0].delta.tool_calls or []]
    assert deltas[0].id == CALL["id"] and deltas[0].function.name == "get_weather"
    assert "".join(d.function.arguments or "" for d in deltas) == '{"city": "Paris"}'
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"
    assert chunks[-1].usage.completion_tokens == 4


def test_sglangs_native_fields_leave_out_what_describes_the_client() -> None:
    from backend import SamplingParams
    from backend._sglang_wire import sglang_sampling
    from backend.openai_compat import openai_sampling

    extra = {"user": "u-1", "metadata": {"k": "v"}, "mirostat": 1}
    native = sglang_sampling(SamplingParams(extra=extra))
    assert "user" not in native and "metadata" not in native and native["mirostat"] == 1
    assert openai_sampling(SamplingParams(extra=extra))["user"] == "u-1"
