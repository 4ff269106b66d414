"""FAKE OpenAI-compatible server for tests (stands in for vLLM, `transformers serve` or a hosted API).

Routes under /v1: GET /models, POST /chat/completions and /completions (prompt as a string or a list of
token ids, `logprobs` in each route's shape: -0.1 for every answer character), both with `stream: true` (SSE, `data: [DONE]` last, a usage chunk with
`stream_options.include_usage`). It requires `Authorization: Bearer <api_key>` when `api_key` is set,
reports `usage.prompt_tokens_details.cached_tokens` from a real memory of earlier prompts, and can be
told to fail its next request (`fail_next = (status, message)`). Answers come from `toy_model`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

from . import toy_model as toy


class FakeOpenAIServer:
    """State and app of the fake; tests read `requests`, `paths` and `auth_headers`, and set `fail_next`
    or `delay_s` (seconds every request waits before it is answered)."""

    model = "fake-model"
    context_length = 512

    def __init__(self, *, api_key: str | None = None) -> None:
        self.api_key = api_key
        self.memory = toy.PrefixMemory()
        self.requests: list[tuple[str, dict[str, Any]]] = []  # (path, JSON body) of each POST
        self.paths: list[tuple[str, str]] = []  # (method, path) of every request
        self.auth_headers: list[str | None] = []
        self.fail_next: tuple[int, str] | None = None
        self.delay_s = 0.0
        self.url = ""  # set by the test fixture that serves the app
        self.app = FastAPI()
        self.app.middleware("http")(self._gate)
        self._add_openai_routes()

    def unauthorized(self) -> JSONResponse:
        error = {
            "message": "Incorrect API key provided.",
            "type": "invalid_request_error",
            "code": "invalid_api_key",
        }
        return JSONResponse({"error": error}, status_code=401)

    def too_long(self, n: int) -> str:
        return (
            f"This model's maximum context length is {self.context_length} tokens; the prompt has {n} tokens."
        )

    def reset(self) -> None:
        """Forget everything between tests (the served app stays up)."""
        self.memory.clear()
        self.requests.clear()
        self.paths.clear()
        self.auth_headers.clear()
        self.fail_next, self.delay_s = None, 0.0

    async def _gate(self, request: Request, call_next: Any) -> Any:
        self.paths.append((request.method, request.url.path))
        self.auth_headers.append(request.headers.get("authorization"))
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.api_key and request.headers.get("authorization") != f"Bearer {self.api_key}":
            return self.unauthorized()
        if self.fail_next and request.method == "POST":
            status, message = self.fail_next
            self.fail_next = None
            return JSONResponse({"error": {"message": message, "type": "server_error"}}, status_code=status)
        return await call_next(request)

    async def _body(self, request: Request) -> dict[str, Any]:
        body = await request.json()
        self.requests.append((request.url.path, body))
        return body

    # --- the OpenAI routes (the SGLang fake serves them too) ----------------------------------------

    def _add_openai_routes(self) -> None:
        app = self.app

        @app.get("/v1/models")
        async def models() -> dict[str, Any]:
            card = {
                "id": self.model,
                "object": "model",
                "owned_by": "fake",
                "max_model_len": self.context_length,
            }
            return {"object": "list", "data": [card]}

        @app.post("/v1/chat/completions")
        async def chat(request: Request) -> Any:
            body = await self._body(request)
            rendered = "".join(f"<|{m.get('role')}|>{_text(m)}\n" for m in body["messages"]) + "<|assistant|>"
            return self._complete(body, toy.tokenize(rendered), chat=True)

        @app.post("/v1/completions")
        async def completions(request: Request) -> Any:
            body = await self._body(request)
            prompt = body["prompt"]
            ids = list(prompt) if isinstance(prompt, list) else toy.tokenize(prompt)
            return self._complete(body, ids, chat=False)

    def _complete(self, body: dict[str, Any], ids: list[int], *, chat: bool) -> Any:
        if len(ids) >= self.context_length:
            error = {"message": self.too_long(len(ids)), "type": "invalid_request_error", "code": None}
            return JSONResponse({"error": error}, status_code=400)
        cached = self.memory.cached(ids)
        self.memory.remember(ids)
        out = toy.decode(ids, int(body.get("max_tokens") or 16), body.get("stop"))
        finish = out.finish["type"]
        usage = {
            "prompt_tokens": len(ids),
            "completion_tokens": len(out.ids),
            "total_tokens": len(ids) + len(out.ids),
            "prompt_tokens_details": {"cached_tokens": cached},
        }
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            return StreamingResponse(
                self._sse(out, finish, usage, include_usage, chat), media_type="text/event-stream"
            )
        choice: dict[str, Any] = {"index": 0, "finish_reason": finish}
        if body.get("logprobs"):
            choice["logprobs"] = _logprobs(out.ids, body, chat=chat)
        if chat:
            choice["message"] = {"role": "assistant", "content": out.text}
        else:
            choice["text"] = out.text
        kind = "chat.completion" if chat else "text_completion"
        return {"id": "fake-1", "object": kind, "model": self.model, "choices": [choice], "usage": usage}

    async def _sse(
        self, out: toy.Decoded, finish: str, usage: dict[str, Any], include_usage: bool, chat: bool
    ) -> AsyncIterator[bytes]:
        def event(choices: list[dict[str, Any]], **extra: Any) -> bytes:
            return (
                b"data: "
                + json.dumps({"id": "fake-1", "model": self.model, "choices": choices, **extra}).encode()
                + b"\n\n"
            )

        for char in out.text:
            piece = {"delta": {"content": char}} if chat else {"text": char}
            yield event([{"index": 0, **piece, "finish_reason": None}])
        last = {"delta": {}} if chat else {"text": ""}
        yield event([{"index": 0, **last, "finish_reason": finish}])
        if include_usage:
            yield event([], usage=usage)
        yield b"data: [DONE]\n\n"


def _text(message: dict[str, Any]) -> str:
    """A message's text as a server would read it: a string, the text parts of a list, or nothing (an
    assistant turn that only calls tools)."""
    content = message.get("content")
    if isinstance(content, list):
        return "".join(str(part.get("text") or "") for part in content if isinstance(part, dict))
    return "" if content is None else str(content)


def _logprobs(ids: list[int], body: dict[str, Any], *, chat: bool) -> dict[str, Any]:
    """The answer's logprobs in the OpenAI shape of the route (chat: content list; completions: arrays)."""
    if chat:
        top = int(body.get("top_logprobs") or 0)
        return {
            "content": [
                {"token": chr(t), "logprob": -0.1, "top_logprobs": [{"token": chr(t), "logprob": -0.1}][:top]}
                for t in ids
            ]
        }
    top = int(body["logprobs"])
    return {
        "tokens": [chr(t) for t in ids],
        "token_logprobs": [-0.1 for _ in ids],
        "top_logprobs": [{chr(t): -0.1} if top else {} for t in ids],
    }
