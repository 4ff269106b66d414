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

from backend import SamplingParams, StreamChunk

from ..options import RequestOptions
from ..pipeline import Completion
from ..pipeline import Request as PipelineRequest
from .errors import ApiError, from_exception, from_validation
from .schemas import (
    AssistantMessage,
    ChatChoice,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChunkChoice,
    CompletionChoice,
    CompletionRequest,
    Delta,
    ModelCard,
    ModelList,
    PromptTokensDetails,
    TextCompletion,
    UsageOut,
    new_id,
    now,
)
from .state import ServerState, get_state

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
        messages = [m.as_text_message() for m in body.messages]
    except ValueError as error:
        raise ApiError(400, str(error), param="messages", code="invalid_value") from error
    pipeline_request = PipelineRequest(
        sampling=_sampling(body, body.token_budget(state.settings.default_max_tokens)),
        messages=messages,
        n=body.n,
        options=_options(body, request, state),
    )
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        return await _stream(state, pipeline_request, "chat", include_usage)
    completion = await state.run(state.pipeline.complete(pipeline_request), route="chat")
    response = ChatCompletion(
        id=new_id("chatcmpl"),
        created=now(),
        model=state.model_id,
        choices=[
            ChatChoice(index=i, message=AssistantMessage(content=g.text), finish_reason=g.finish_reason)
            for i, g in enumerate(completion.choices)
        ],
        usage=_usage(completion),
        promptfold=completion.report.as_dict(),
    )
    return JSONResponse(response.model_dump(exclude_none=True), headers=completion.report.headers())


async def completions(request: Request) -> Any:
    state = get_state(request)
    body = await _parse(request, CompletionRequest)
    state.check_model(body.model)
    _check_n(body.n, body.stream, state)
    prompts = body.prompts()
    options = _options(body, request, state)
    sampling = _sampling(body, body.max_tokens)
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
    usage = _usage(*results)
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


def _sampling(body: ChatCompletionRequest | CompletionRequest, max_tokens: int) -> SamplingParams:
    return SamplingParams(
        temperature=1.0 if body.temperature is None else body.temperature,
        top_p=1.0 if body.top_p is None else body.top_p,
        max_tokens=max_tokens,
        stop=list(body.stop or []),
        seed=body.seed,
        extra=body.passthrough(),
    )


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


def _usage(*completions: Completion) -> UsageOut:
    prompt = sum(c.report.prompt_tokens for c in completions)
    completion = sum(c.report.completion_tokens for c in completions)
    cached = sum(c.report.cached_tokens for c in completions)
    return UsageOut(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=prompt + completion,
        prompt_tokens_details=PromptTokensDetails(cached_tokens=cached),
    )


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
    render = _ChatChunks(state.model_id) if route == "chat" else _TextChunks(state.model_id)

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


class _ChatChunks:
    def __init__(self, model: str) -> None:
        self.id, self.created, self.model = new_id("chatcmpl"), now(), model

    def _chunk(self, choices: list[ChunkChoice], **extra: Any) -> ChatCompletionChunk:
        return ChatCompletionChunk(
            id=self.id, created=self.created, model=self.model, choices=choices, **extra
        )

    def role_chunk(self) -> ChatCompletionChunk:
        return self._chunk([ChunkChoice(delta=Delta(role="assistant", content=""))])

    def content(self, text: str) -> ChatCompletionChunk:
        return self._chunk([ChunkChoice(delta=Delta(content=text))])

    def finish(self, reason: str, report: dict[str, Any]) -> ChatCompletionChunk:
        return self._chunk([ChunkChoice(delta=Delta(), finish_reason=reason)], promptfold=report)

    def usage(self, chunk: StreamChunk) -> ChatCompletionChunk:
        assert chunk.usage is not None
        return self._chunk([], usage=_usage_of(chunk))


class _TextChunks:
    def __init__(self, model: str) -> None:
        self.id, self.created, self.model = new_id("cmpl"), now(), model

    def _chunk(self, choices: list[CompletionChoice], **extra: Any) -> TextCompletion:
        return TextCompletion(id=self.id, created=self.created, model=self.model, choices=choices, **extra)

    def content(self, text: str) -> TextCompletion:
        return self._chunk([CompletionChoice(index=0, text=text, finish_reason=None)])

    def finish(self, reason: str, report: dict[str, Any]) -> TextCompletion:
        return self._chunk([CompletionChoice(index=0, text="", finish_reason=reason)], promptfold=report)

    def usage(self, chunk: StreamChunk) -> TextCompletion:
        return self._chunk([], usage=_usage_of(chunk))


def _usage_of(chunk: StreamChunk) -> UsageOut:
    assert chunk.usage is not None
    u = chunk.usage
    return UsageOut(
        prompt_tokens=u.prompt_tokens,
        completion_tokens=u.completion_tokens,
        total_tokens=u.total_tokens,
        prompt_tokens_details=PromptTokensDetails(cached_tokens=u.cached_tokens),
    )
