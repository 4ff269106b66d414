"""OpenAI parameters a backend cannot honour: a 400 that says so, unless the client asks for leniency.

An OpenAI-compatible server (a backend that takes requests as sent, `capabilities.tool_calls`) gets every
field and decides itself. The embedded engine and SGLang honour the sampling fields (penalties,
logit_bias, top_k, min_p, min_tokens, stop ids, logprobs, constraints, tools), but not the ones below.
With the header `x-promptfold-lenient: 1` such a field is dropped instead, and the report's notes say so.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from pydantic import BaseModel

from backend import Backend

from ..user_errors import InvalidRequest

LENIENT_HEADER = "x-promptfold-lenient"
CANNOT_HONOUR = {
    "suffix": "text after the completion (fill-in-the-middle)",
    "audio": "audio output",
    "prediction": "predicted outputs",
    "web_search_options": "web search",
}


def lenient(request: Request) -> bool:
    return request.headers.get(LENIENT_HEADER, "").lower() in ("1", "true", "yes")


def check_supported(body: BaseModel, backend: Backend, request: Request) -> list[str]:
    """Raise InvalidRequest for a field `backend` cannot honour; in lenient mode drop it and return notes."""
    if backend.capabilities.tool_calls:
        return []
    found = {name: what for name, what in CANNOT_HONOUR.items() if _given(body, name)}
    modalities = (body.model_extra or {}).get("modalities")
    if isinstance(modalities, list) and any(m != "text" for m in modalities):
        found["modalities"] = "output other than text"
    if not found:
        return []
    if not lenient(request):
        name, what = next(iter(found.items()))
        raise InvalidRequest(
            f"the {backend.name} backend cannot honour '{name}' ({what}); send the header "
            f"'{LENIENT_HEADER}: 1' to have it ignored",
            param=name,
            code="unsupported_parameter",
        )
    for name in found:
        _drop(body, name)
    return [f"ignored (lenient mode): {', '.join(sorted(found))}"]


def _given(body: BaseModel, name: str) -> bool:
    value: Any = getattr(body, name, None) if name in type(body).model_fields else None
    return value is not None or (body.model_extra or {}).get(name) is not None


def _drop(body: BaseModel, name: str) -> None:
    if name in type(body).model_fields:
        setattr(body, name, None)
    (body.model_extra or {}).pop(name, None)
