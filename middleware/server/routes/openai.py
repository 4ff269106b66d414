"""The OpenAI routes: /v1/chat/completions, /v1/models. Thin: parse, run, render (/v1/completions is in
completions.py, /v1/responses in responses.py).

A request's `promptfold` options are validated and merged with the server defaults here, once, before the
pipeline runs any stage (`routes/common.py`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from ...user_errors import InvalidRequest
from ..schemas import ChatCompletionRequest, ModelCard, ModelList
from ..sse import StreamPlan, stream_response
from ..state import ALIASES, ServerState, get_state
from ..support import check_supported
from ..translate import ChatChunks, chat_completion, chat_request
from .common import options_of, parse_body


def build_router(auth: Any) -> APIRouter:
    router = APIRouter(dependencies=[Depends(auth)])
    router.add_api_route("/v1/chat/completions", chat_completions, methods=["POST"])
    router.add_api_route("/v1/models", list_models, methods=["GET"])
    router.add_api_route("/v1/models/{model_id:path}", get_model, methods=["GET"])
    return router


def served_names(state: ServerState) -> list[str]:
    """Every model name the server accepts: the served model, `--served-model-name`, and the aliases."""
    names = [*state.model_names(), *ALIASES]
    return list(dict.fromkeys(n for n in names if n))


def _card(state: ServerState, name: str) -> ModelCard:
    return ModelCard(
        id=name,
        created=int(state.started_at),
        root=state.model_id,
        max_model_len=state.backend.capabilities.max_context_tokens,
    )


async def list_models(request: Request) -> ModelList:
    state = get_state(request)
    return ModelList(data=[_card(state, name) for name in served_names(state)])


async def get_model(model_id: str, request: Request) -> ModelCard:
    state = get_state(request)
    state.check_model(model_id)
    return _card(state, model_id)


def check_request(state: ServerState, model: str | None, n: int) -> None:
    """The model name (when given) is one this server serves, and `n` is within the server's limit."""
    if model is not None:
        state.check_model(model)
    if n > state.settings.max_n:
        raise InvalidRequest(f"Invalid 'n': at most {state.settings.max_n}.", param="n")


async def chat_completions(request: Request) -> Any:
    state = get_state(request)
    body = await parse_body(request, ChatCompletionRequest)
    check_request(state, body.model, body.n)
    notes = check_supported(body, state.backend, request)
    options = options_of(body.promptfold, request, state)
    pipeline_request = chat_request(body, state.settings.default_max_tokens, options)
    if body.stream:
        prepared = await state.run(state.pipeline.stream(pipeline_request), route="chat", count=False)
        prepared.report.notes.extend(notes)
        plan = StreamPlan([(0, prepared)], body.n, body.include_usage())
        return await stream_response(state, plan, "chat", ChatChunks(state.model_id))
    completion = await state.run(state.pipeline.complete(pipeline_request), route="chat")
    completion.report.notes.extend(notes)
    response = chat_completion(completion, state.model_id)
    return JSONResponse(response.body(), headers=completion.report.headers())
