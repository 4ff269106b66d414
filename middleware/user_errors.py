"""The base of every error a user can fix, re-exported from the backend's taxonomy (`backend.errors`):
a one-sentence message, the HTTP status a proxy answers with (`status`), an OpenAI-style `code` and the
`param` it is about, so that stages and the CLI stay free of HTTP."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from backend.errors import InvalidRequest, MissingDependency, NotFound, UnsupportedRequest, UserError

__all__ = [
    "InvalidRequest",
    "MissingDependency",
    "NotFound",
    "UnsupportedRequest",
    "UserError",
    "validation_error",
]


def validation_error(error: ValidationError | Any, *, prefix: str | None = None) -> InvalidRequest:
    """The first problem of a pydantic validation as a 400 naming its parameter, phrased like OpenAI's
    errors ("Invalid 'promptfold.compress.rate': ..."). The one formatter for the proxy, SDK and CLI
    (FastAPI's RequestValidationError has the same `errors()`)."""
    first = error.errors()[0]
    loc = [str(part) for part in first.get("loc", ()) if part != "body"]
    param = ".".join(([prefix] if prefix else []) + loc) or prefix
    if first.get("type") == "missing":
        return InvalidRequest(
            f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter"
        )
    message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    if first.get("type") == "extra_forbidden":
        message = "unknown field"
    return InvalidRequest(f"Invalid '{param}': {message}.", param=param)
