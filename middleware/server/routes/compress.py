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

from ...compress.result import CompressionResult
from ...compress.stage import NAME, stage_report
from ...user_errors import InvalidRequest
from ..schemas import ChatMessageIn
from ..state import get_state
from .common import options_of, parse_body


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
    body = await parse_body(request, CompressRequest)
    if body.model is not None:
        state.check_model(body.model)
    if (body.messages is None) == (body.prompt is None):
        raise InvalidRequest("send either 'messages' or 'prompt'", param="messages")
    messages = [m.as_text_message() for m in body.messages] if body.messages is not None else None
    if body.compress is not None or body.promptfold is None:  # the route compresses unless told not to
        raw = {NAME: True if body.compress is None else body.compress}
        options = options_of(raw, request, state, where=None).compress
    else:
        options = options_of({NAME: True, **body.promptfold}, request, state).compress
    if options is None:
        return _response(body, messages, None, "compression off or bypassed by request")
    result = await state.compression.compress(options, messages=messages, text=body.prompt)
    return _response(body, messages, result, asdict(stage_report(result, options)))


def _response(
    body: CompressRequest,
    messages: list[dict[str, Any]] | None,
    result: CompressionResult | None,
    report: dict[str, Any] | str,
) -> JSONResponse:
    """The compressed messages or prompt (unchanged when `result` is None, with `report` the reason)."""
    content: dict[str, Any] = {"object": "promptfold.compression"}
    if result is None:
        content["messages" if messages is not None else "prompt"] = messages or body.prompt
        content["promptfold"] = {"stages": [{"stage": NAME, "applied": False, "skipped_reason": report}]}
        return JSONResponse(content)
    if result.messages is not None:
        content["messages"] = result.messages
    else:
        content["prompt"] = result.text
    content["usage"] = {
        "original_tokens": result.original_tokens,
        "compressed_tokens": result.compressed_tokens,
        "ratio": round(result.ratio, 4),
    }
    content["promptfold"] = {"stages": [report]}
    if body.annotate:
        content["annotated"] = result.annotated()
    return JSONResponse(content)
