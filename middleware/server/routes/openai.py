"""The OpenAI routes: /v1/chat/completions, /v1/completions, /v1/models. Thin: parse, run, render.

A request's `promptfold` options are validated and merged with the server defaults here, once, before the
pipeline runs any stage (`routes/common.py`)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel

from ...pipeline import Completion
from ...pipeline import Request as PipelineRequest
from ...user_errors import InvalidRequest
from ..errors import from_exception
from ..schemas import (
    ChatCompletionRequest,
    CompletionChoice,
    CompletionRequest,
    ModelCard,
    ModelList,
    TextCompletion,
    new_id,
    now,
)
from ..state import ServerState, get_state
from ..translate import ChatChunks, TextChunks, chat_completion, chat_request, sampling_from, usage_out
from .common import options_of, parse_body


def build_router(auth: Any) -> APIRouter:
    router = APIRouter(dependencies=[Depends(auth)])
    router.add_api_route("/v1/chat/completions", chat_completions, methods=["POST"])
    router.add_api_route("/v1/completions", completions, methods=["POST"])
    router.add_api_route("/v1/models", list_models, methods=["GET"])
    router.add_api_route("/v1/models/{model_id:path}", get_model, methods=["GET"])
    return router


async def list_models(request: Request) -> ModelList:
    state = get_state(request)
    created = int(state.started_at)
    return ModelList(data=[ModelCard(id=name, created=created) for name in state.model_names()])


async def get_model(model_id: str, request: Request) -> ModelCard:
    state = get_state(request)
    state.check_model(model_id)
    return ModelCard(id=model_id, created=int(state.started_at))


async def chat_completions(request: Request) -> Any:
    state = get_state(request)
    body = await parse_body(request, ChatCompletionRequest)
    state.check_model(body.model)
    _check_n(body.n, body.stream, state)
    options = options_of(body.promptfold, request, state)
    pipeline_request = chat_request(body, state.settings.default_max_tokens, options)
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        return await _stream(state, pipeline_request, "chat", include_usage)
    completion = await state.run(state.pipeline.complete(pipeline_request), route="chat")
    response = chat_completion(completion, state.model_id)
    return JSONResponse(response.model_dump(exclude_none=True), headers=completion.report.headers())


async def completions(request: Request) -> Any:
    state = get_state(request)
    body = await parse_body(request, CompletionRequest)
    state.check_model(body.model)
    _check_n(body.n, body.stream, state)
    prompts = body.prompts()
    options = options_of(body.promptfold, request, state)
    sampling = sampling_from(body, body.max_tokens)
    requests = [PipelineRequest(sampling=sampling, prompt=p, n=body.n, options=options) for p in prompts]
    if body.stream:
        if len(requests) > 1:
            raise InvalidRequest("stream=true takes a single prompt", param="prompt")
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        return await _stream(state, requests[0], "completions", include_usage)
    results: list[Completion] = await state.run(
        asyncio.gather(*(state.pipeline.complete(r) for r in requests)), route="completions"
    )
    choices = [
        CompletionChoice(index=p * body.n + i, text=g.text, finish_reason=g.finish_reason)
        for p, completion in enumerate(results)
        for i, g in enumerate(completion.choices)
    ]
    usage = usage_out(*results)
    report = results[0].report
    response = TextCompletion(
        id=new_id("cmpl"),
        created=now(),
        model=state.model_id,
        choices=choices,
        usage=usage,
        promptfold=report.as_dict()
        if len(results) == 1
        else {"requests": [r.report.as_dict() for r in results]},
    )
    return JSONResponse(response.model_dump(exclude_none=True), headers=report.headers())


# --- helpers ----------------------------------------------------------------------------------------


def _check_n(n: int, stream: bool, state: ServerState) -> None:
    if n > state.settings.max_n:
        raise InvalidRequest(f"Invalid 'n': at most {state.settings.max_n}.", param="n")
    if stream and n > 1:
        raise InvalidRequest("n > 1 is not supported with stream=true", param="n")


async def _stream(state: ServerState, request: PipelineRequest, route: str, include_usage: bool) -> Any:
    started = time.perf_counter()
    prepared = await state.run(state.pipeline.stream(request), route=route, count=False)
    chunks = prepared.chunks
    # Pull the first chunk before answering, so that an error the backend raises at once (a prompt too
    # long, a dead server) still becomes a proper HTTP status instead of a broken 200 stream.
    try:
        first = await anext(chunks)
    except StopAsyncIteration:
        first = None
    except Exception as error:
        state.record_failure(route, from_exception(error).status, started)
        raise
    render = ChatChunks(state.model_id) if route == "chat" else TextChunks(state.model_id)

    async def events() -> AsyncIterator[str]:
        status = 200
        try:
            if route == "chat":
                yield _sse(render.role_chunk())
            pending = first
            while pending is not None:
                chunk = pending
                if chunk.finish_reason is None:
                    if chunk.text:
                        yield _sse(render.content(chunk.text))
                else:
                    if chunk.text:
                        yield _sse(render.content(chunk.text))
                    yield _sse(render.finish(chunk.finish_reason, prepared.report.as_dict()))
                    if include_usage and chunk.usage is not None:
                        yield _sse(render.usage(chunk))
                pending = await anext(chunks, None)
        except Exception as error:  # the stream already started: report in-band, as OpenAI does
            api_error = from_exception(error)
            status = api_error.status
            yield _sse(api_error.body())
        finally:
            report = prepared.report
            state.metrics.observe(
                route,
                status,
                time.perf_counter() - started,
                report.prompt_tokens,
                report.completion_tokens,
                report.cached_tokens,
            )
        yield "data: [DONE]\n\n"

    headers = {**prepared.report.headers(), "cache-control": "no-cache", "x-accel-buffering": "no"}
    return StreamingResponse(events(), media_type="text/event-stream", headers=headers)


def _sse(payload: BaseModel | dict[str, Any]) -> str:
    data = payload.model_dump(exclude_none=True) if isinstance(payload, BaseModel) else payload
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"
