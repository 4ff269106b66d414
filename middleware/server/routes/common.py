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
from ..state import ServerState

BYPASS_HEADER = "x-promptfold-bypass"
Body = TypeVar("Body", bound=BaseModel)


async def parse_body(request: Request, model: type[Body]) -> Body:
    """The JSON body validated into `model`; a 400 naming the field otherwise (`body.py`: standard JSON,
    bounded nesting, valid Unicode)."""
    raw = await request.body()
    data, _ = read_json(raw)
    if not isinstance(data, dict):
        raise InvalidRequest("The request body must be a JSON object.", code="invalid_json")
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
