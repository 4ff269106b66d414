"""What every route shares: reading a JSON body into its model, the bypass header, and the options of a
request validated once, at the edge."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError

from ...options import RequestOptions, bypassed, request_options
from ...user_errors import InvalidRequest, validation_error
from ..body import read_json
from ..bounds import check_prompt, limit_for
from ..state import ServerState, get_state

BYPASS_HEADER = "x-promptfold-bypass"
Body = TypeVar("Body", bound=BaseModel)
INLINE_BODY_BYTES = 256 * 1024  # larger bodies are parsed on the proxy's worker pool


async def parse_body(request: Request, model: type[Body]) -> Body:
    """The JSON body validated into `model`; a 400 naming the field otherwise (`body.py`: standard JSON,
    bounded nesting, valid Unicode), a 413 over the surface's prompt limit (`bounds.py`), both before
    any model work."""
    raw = await request.body()
    state = get_state(request)
    if len(raw) > INLINE_BODY_BYTES:  # json.loads and the walk of megabytes: off the event loop
        data, text = await state.offload(read_json, raw)
    else:
        data, text = read_json(raw)
    if not isinstance(data, dict):
        raise InvalidRequest("The request body must be a JSON object.", code="invalid_json")
    path = request.url.path
    limit = limit_for(path, data, state.settings, bypass_requested(request))
    if limit is not None:
        await check_prompt(path, data, text, limit, state.pipeline.count_tokens, state.offload)
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise validation_error(error) from error


def bypass_requested(request: Request) -> bool:
    return request.headers.get(BYPASS_HEADER, "").lower() in ("1", "true", "yes")


def options_of(
    raw: Mapping[str, Any] | None, request: Request, state: ServerState, *, where: str | None = "promptfold"
) -> RequestOptions:
    """The request's promptfold options over the server defaults, validated once (or bypassed)."""
    if bypass_requested(request):
        return bypassed()
    return request_options(raw, state.settings.stage_defaults, where=where)
