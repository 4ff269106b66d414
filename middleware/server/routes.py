"""The OpenAI routes: /v1/chat/completions, /v1/completions, /v1/models. Thin: parse, run, render."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any, TypeVar

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ValidationError

from ..options import RequestOptions
from ..pipeline import Completion
from ..pipeline import Request as PipelineRequest
from .errors import ApiError, from_exception, from_validation
from .schemas import (
    ChatCompletionRequest,
    CompletionChoice,
    CompletionRequest,
    ModelCard,
    ModelList,
    TextCompletion,
    new_id,
    now,
)
from .state import ServerState, get_state
from .translate import ChatChunks, TextChunks, chat_completion, chat_request, sampling_from, usage_out

BYPASS_HEADER = "x-promptfold-bypass"
# Modules with `build_router(auth) -> APIRouter` for routes beyond the OpenAI ones (e.g. /v1/compress).
EXTRA_ROUTER_MODULES: list[str] = [
    "middleware.retrieval.routes",
    "middleware.compress.routes",
    "middleware.compress.gist.routes",
]
Body = TypeVar("Body", bound=BaseModel)


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
    body = await _parse(request, ChatCompletionRequest)
    state.check_model(body.model)
    _check_n(body.n, body.stream, state)
    try:
        pipeline_request = chat_request(
            body, state.settings.default_max_tokens, _options(body, request, state)
        )
    except ValueError as error:
        raise ApiError(400, str(error), param="messages", code="invalid_value") from error
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        return await _stream(state, pipeline_request, "chat", include_usage)
    completion = await state.run(state.pipeline.complete(pipeline_request), route="chat")
    response = chat_completion(completion, state.model_id)
    return JSONResponse(response.model_dump(exclude_none=True), headers=completion.report.headers())


async def completions(request: Request) -> Any:
    state = get_state(request)
    body = await _parse(request, CompletionRequest)
    state.check_model(body.model)
    _check_n(body.n, body.stream, state)
    prompts = body.prompts()
    options = _options(body, request, state)
    sampling = sampling_from(body, body.max_tokens)
    requests = [PipelineRequest(sampling=sampling, prompt=p, n=body.n, options=options) for p in prompts]
    if body.stream:
        if len(requests) > 1:
            raise ApiError(400, "stream=true takes a single prompt", param="prompt", code="invalid_value")
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


async def _parse(request: Request, model: type[Body]) -> Body:
    raw = await request.body()
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ApiError(400, f"The request body is not valid JSON: {error}.", code="invalid_json") from error
    if not isinstance(data, dict):
        raise ApiError(400, "The request body must be a JSON object.", code="invalid_json")
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise from_validation(error) from error


def _check_n(n: int, stream: bool, state: ServerState) -> None:
    if n > state.settings.max_n:
        raise ApiError(400, f"Invalid 'n': at most {state.settings.max_n}.", param="n", code="invalid_value")
    if stream and n > 1:
        raise ApiError(400, "n > 1 is not supported with stream=true", param="n", code="invalid_value")


def _options(
    body: ChatCompletionRequest | CompletionRequest, request: Request, state: ServerState
) -> RequestOptions:
    if request.headers.get(BYPASS_HEADER, "").lower() in ("1", "true", "yes"):
        return RequestOptions(bypass=True)
    options = body.promptfold or RequestOptions()
    try:
        return options.merged_over(state.settings.stage_defaults)
    except ValidationError as error:
        raise from_validation(error) from error


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
