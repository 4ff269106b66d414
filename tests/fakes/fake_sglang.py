"""FAKE SGLang server. SGLang needs a GPU and cannot run on the CPU machines CI uses, so this small
FastAPI app stands in for it; the real SGLang 0.5.17 is exercised on the GPU machine (tests/contract).

It imitates the HTTP shapes `backend/sglang.py` is written against, as SGLang's http_server.py and the
GPU runs show them:
- POST /generate with `text`, `input_ids` or `input_embeds`, single or a list batch; `sampling_params`
  (max_new_tokens 0 allowed, stop strings trimmed); `meta_info` with prompt/completion/cached tokens and
  finish_reason {"type": "stop"|"length"|"abort", ...}; `return_logprob` + `logprob_start_len` giving
  `input_token_logprobs` entries [logprob, token_id, null] for positions logprob_start_len+1 .. end,
  with a [null, first_id, null] entry in front only when logprob_start_len is 0 (as SGLang does), and
  `output_token_logprobs` (+ `output_top_logprobs` with `top_logprobs_num`) for the answer;
  `stream: true` as SSE with cumulative text and output_ids (incremental with `incremental_stream`),
  ending with `data: [DONE]`.
- cached_tokens from a real memory of earlier prompts (the radix cache); as with SGLang's default fcfs
  scheduling, prompts of one batch do not see each other. With the radix cache on, input_embeds are
  refused with SGLang's own sentence; `radix_cache=False` stands for --disable-radix-cache.
- GET /health, /health_generate, /model_info, /get_server_info (and /server_info only with
  `server_info_route=True`: older servers answer 404 there), POST /flush_cache, and the OpenAI routes
  /v1/models and /v1/chat/completions (from FakeOpenAIServer).
- `api_key` as SGLang's --api-key: a wrong bearer gets 401 {"error": "Unauthorized"}.

`python -m tests.fakes.fake_sglang --model-path X --host H --port P [ignored flags]` serves it, for the
launcher tests.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from . import toy_model as toy
from .fake_openai import FakeOpenAIServer

RADIX_EMBEDS_ERROR = (
    "input_embeds is provided while disable_radix_cache is False. Please add `--disable-radix-cache` "
    "when you launch the server if you want to use input_embeds as inputs."
)


class FakeSGLangServer(FakeOpenAIServer):
    """State and app of the fake; tests read `requests`, set `fail_next`, `abort_next`, `healthy`."""

    context_length = 512

    def __init__(
        self,
        *,
        model_path: str = "/models/fake-sglang-model",
        radix_cache: bool = True,
        api_key: str | None = None,
        incremental_stream: bool = False,
        server_info_route: bool = False,
    ) -> None:
        self.model_path = self.model = self.initial_model_path = model_path  # served name = the path
        self.radix_cache = radix_cache
        self.incremental_stream = incremental_stream
        self.healthy = True
        self.abort_next: dict[str, Any] | None = None  # a finish_reason {"type": "abort", ...} to answer
        super().__init__(api_key=api_key)
        self._add_native_routes(server_info_route)

    def reset(self) -> None:
        super().reset()
        self.model_path = self.model = self.initial_model_path
        self.healthy, self.abort_next, self.incremental_stream = True, None, False

    def unauthorized(self) -> JSONResponse:
        return JSONResponse({"error": "Unauthorized"}, status_code=401)

    def too_long(self, n: int) -> str:
        return f"The input ({n} tokens) is longer than the model's context length ({self.context_length} tokens)."

    def _add_native_routes(self, server_info_route: bool) -> None:
        app = self.app

        @app.get("/health")
        @app.get("/health_generate")
        async def health() -> Response:
            return Response(status_code=200 if self.healthy else 503)

        @app.get("/model_info")
        async def model_info() -> dict[str, Any]:
            return {"model_path": self.model_path, "tokenizer_path": self.model_path, "is_generation": True}

        async def server_info() -> dict[str, Any]:
            return {
                "model_path": self.model_path,
                "context_length": None,  # as when --context-length is not given
                "disable_radix_cache": not self.radix_cache,
                "max_total_num_tokens": 100_000,
                "version": "0.5.17-fake",
            }

        app.get("/get_server_info")(server_info)
        if server_info_route:
            app.get("/server_info")(server_info)

        @app.post("/flush_cache")
        async def flush_cache() -> Response:
            self.memory.clear()
            return Response("Cache flushed.\n", status_code=200)

        @app.post("/generate")
        async def generate(request: Request) -> Any:
            return self._generate(await self._body(request))

    def _generate(self, body: dict[str, Any]) -> Any:
        field = next((f for f in ("text", "input_ids", "input_embeds") if body.get(f) is not None), None)
        if field is None:
            return _error(400, "Either text, input_ids or input_embeds should be provided.")
        value = body[field]
        if field == "text":
            single = isinstance(value, str)
        elif field == "input_ids":
            single = not value or not isinstance(value[0], list)
        else:
            single = not isinstance(value[0][0], list)
        items = [value] if single else value
        if field == "input_embeds" and self.radix_cache:
            return _error(400, RADIX_EMBEDS_ERROR)
        try:
            prompts = [_prompt_ids(field, item) for item in items]
        except ValueError as exc:
            return _error(400, str(exc))
        for ids in prompts:
            if len(ids) >= self.context_length:
                return _error(400, self.too_long(len(ids)))
        cached = [self.memory.cached(ids) if self.radix_cache else 0 for ids in prompts]
        for ids in prompts:  # after the whole batch: fcfs prefills a batch's prompts side by side
            if self.radix_cache:
                self.memory.remember(ids)
        sampling = body.get("sampling_params") or {}
        if body.get("stream"):
            out = toy.decode(prompts[0], int(sampling.get("max_new_tokens", 128)), sampling.get("stop"))
            return StreamingResponse(
                self._stream(prompts[0], out, cached[0], body), media_type="text/event-stream"
            )
        answers = [self._answer(ids, n, sampling, body) for ids, n in zip(prompts, cached, strict=True)]
        return answers[0] if single else answers

    def _answer(
        self, ids: list[int], cached: int, sampling: dict[str, Any], body: dict[str, Any]
    ) -> dict[str, Any]:
        out = toy.decode(ids, int(sampling.get("max_new_tokens", 128)), sampling.get("stop"))
        meta = _meta(ids, len(out.ids), cached, out.finish)
        if self.abort_next is not None:
            meta["finish_reason"], self.abort_next = {"type": "abort", **self.abort_next}, None
        if body.get("return_logprob"):
            start = int(body.get("logprob_start_len", -1))
            start = len(ids) - 1 if start < 0 else start  # -1: output logprobs only
            entries = [[toy.prompt_logprob(ids, i), ids[i], None] for i in range(start + 1, len(ids))]
            meta["input_token_logprobs"] = ([[None, ids[0], None]] if start == 0 else []) + entries
            text = bool(body.get("return_text_in_logprobs"))
            meta["output_token_logprobs"] = [[-0.1, t, chr(t) if text else None] for t in out.ids]
            top = int(body.get("top_logprobs_num") or 0)
            if top:  # the chosen token first, then made-up runners-up
                meta["output_top_logprobs"] = [
                    [[-0.1, t, chr(t) if text else None]] + [[-3.0 - k, 97 + k, None] for k in range(top - 1)]
                    for t in out.ids
                ]
        return {"text": out.text, "output_ids": out.ids, "meta_info": meta}

    async def _stream(
        self, ids: list[int], out: toy.Decoded, cached: int, body: dict[str, Any]
    ) -> AsyncIterator[bytes]:
        steps = max(len(out.ids), 1)  # max_new_tokens 0 still sends one (finishing) chunk
        for k in range(1, steps + 1):
            done = k == steps
            meta = _meta(ids, min(k, len(out.ids)), cached, out.finish if done else None)
            if self.incremental_stream:
                chunk = {
                    "text": out.text[k - 1 : k] if not done else out.text[k - 1 :],
                    "output_ids": out.ids[k - 1 : k],
                }
            else:
                chunk = {"text": out.text[:k] if not done else out.text, "output_ids": out.ids[:k]}
            if body.get("return_logprob"):  # as the ids: cumulative, or this chunk's only
                meta["output_token_logprobs"] = [[-0.1, t, chr(t)] for t in chunk["output_ids"]]
            yield b"data: " + json.dumps({**chunk, "meta_info": meta}).encode() + b"\n\n"
        yield b"data: [DONE]\n\n"


def _prompt_ids(field: str, item: Any) -> list[int]:
    if field == "text":
        return toy.tokenize(item)
    if field == "input_ids":
        return [int(t) for t in item]
    return toy.unembed(item)


def _meta(ids: list[int], completion: int, cached: int, finish: Any) -> dict[str, Any]:
    return {
        "id": "fake",
        "finish_reason": finish,
        "prompt_tokens": len(ids),
        "completion_tokens": completion,
        "cached_tokens": cached,
        "e2e_latency": 0.001,
    }


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": {"message": message}}, status_code=status)


def main() -> None:
    """Serve the fake like `python -m sglang.launch_server` would (unknown flags are ignored)."""
    import uvicorn

    parser = argparse.ArgumentParser()
    parser.add_argument("--model-path", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=30000)
    args, ignored = parser.parse_known_args()
    print(f"fake SGLang: model {args.model_path}, ignoring {ignored}", flush=True)
    uvicorn.run(
        FakeSGLangServer(model_path=args.model_path).app, host=args.host, port=args.port, log_level="info"
    )


if __name__ == "__main__":
    main()
