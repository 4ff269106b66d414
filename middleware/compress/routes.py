"""`POST /v1/compress`: compress messages (or a prompt) and return them with the report, without
calling the model.

    {"messages": [...], "compress": {"rate": 0.4}}            (or "promptfold": {"compress": {...}})
 -> {"object": "promptfold.compression", "messages": [...], "usage": {...}, "promptfold": {...}}
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from ..server.errors import ApiError
from ..server.routes import BYPASS_HEADER, _parse
from ..server.schemas import ChatMessageIn
from ..server.state import get_state
from .options import CompressInputError
from .stage import NAME, CompressStage, stage_report


class CompressRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str | None = None
    messages: list[ChatMessageIn] | None = Field(None, min_length=1)
    prompt: str | None = None
    compress: dict[str, Any] | bool | None = None
    promptfold: dict[str, Any] | None = None
    annotate: bool = Field(False, description="also return the original text with dropped runs marked")


def build_router(auth: Any) -> APIRouter:
    router = APIRouter(dependencies=[Depends(auth)])
    router.add_api_route("/v1/compress", compress, methods=["POST"])
    return router


async def compress(request: Request) -> JSONResponse:
    state = get_state(request)
    body = await _parse(request, CompressRequest)
    if body.model is not None:
        state.check_model(body.model)
    if (body.messages is None) == (body.prompt is None):
        raise ApiError(400, "send either 'messages' or 'prompt'", param="messages", code="invalid_value")
    stage = _stage(state)
    raw, where = body.compress, "compress"
    if raw is None and body.promptfold is not None:
        raw, where = body.promptfold.get(NAME), "promptfold.compress"
    try:
        messages = [m.as_text_message() for m in body.messages] if body.messages is not None else None
    except ValueError as error:
        raise ApiError(400, str(error), param="messages", code="invalid_value") from error
    bypass = request.headers.get(BYPASS_HEADER, "").lower() in ("1", "true", "yes")
    try:
        options = None if bypass else stage.options_for(True if raw is None else raw, where=where)
        if options is None:
            return _unchanged(body, messages, "compression off or bypassed by request")
        result = await stage.run(options, messages=messages, text=body.prompt)
    except CompressInputError as error:
        raise ApiError(400, str(error), param=error.param, code="invalid_value") from error
    report = stage_report(result, options)
    content: dict[str, Any] = {"object": "promptfold.compression"}
    if result.messages is not None:
        content["messages"] = result.messages
    else:
        content["prompt"] = result.text
    content["usage"] = {
        "original_tokens": result.original_tokens,
        "compressed_tokens": result.compressed_tokens,
        "ratio": round(result.ratio, 4),
    }
    content["promptfold"] = {"stages": [asdict(report)]}
    if body.annotate:
        content["annotated"] = result.annotated()
    return JSONResponse(content)


def _unchanged(body: CompressRequest, messages: list[dict[str, Any]] | None, reason: str) -> JSONResponse:
    content: dict[str, Any] = {"object": "promptfold.compression"}
    if messages is not None:
        content["messages"] = messages
    else:
        content["prompt"] = body.prompt
    content["promptfold"] = {"stages": [{"stage": NAME, "applied": False, "skipped_reason": reason}]}
    return JSONResponse(content)


def _stage(state: Any) -> CompressStage:
    for stage in state.pipeline.stages:
        if isinstance(stage, CompressStage):
            return stage
    cached = getattr(state, "_compress_stage", None)
    if cached is None:
        cached = CompressStage(state.backend, state.settings)
        state._compress_stage = cached
    return cached
