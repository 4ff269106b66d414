"""Every error leaves the proxy as OpenAI's body `{"error": {"message", "type", "param", "code"}}`.

The taxonomy is `backend.errors`: a `UserError` (the caller can fix it) is the only way to a 4xx, with its
own status, code and param; a `BackendError` is the backend's failure (502) or absence (503), in its own
words; anything else is a bug, answered 500 with the request id (the `x-request-id` header, also in the
log next to the traceback) and never a traceback to the client.

Statuses: 400 malformed JSON or invalid parameters (as OpenAI does), 401 missing or wrong API key, 404
unknown model or route, 405 wrong method (with `Allow`), 408 a body too slow to arrive, 413 body or prompt
too large, 422 a valid request the backend cannot serve as asked, 501 a feature whose package is not
installed, 502 the backend failed (whatever status its error carries, unless 503/504), 503 unreachable.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from backend import BackendError, UserError

from ..user_errors import validation_error
from .schemas import ErrorBody, ErrorResponse

log = logging.getLogger("promptfold.server")


class ApiError(UserError):
    """An error the proxy itself answers (auth, size, routing, startup), with its HTTP status."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message, param=param, code=code or "invalid_value", status=status)
        self.type = type
        self.code = code  # type: ignore[assignment]  # OpenAI sends null codes for some errors

    def body(self) -> dict[str, Any]:
        return ErrorResponse(
            error=ErrorBody(message=self.message, type=self.type, param=self.param, code=self.code)
        ).model_dump()

    def response(self, headers: dict[str, str] | None = None) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status, headers=headers)


def from_exception(error: BaseException, request_id: str | None = None) -> ApiError:
    """The error a client should see for anything raised while serving."""
    if isinstance(error, ApiError):
        return error
    if isinstance(error, RequestValidationError):
        error = validation_error(error)  # type: ignore[arg-type]  # same errors() shape as pydantic's
    if isinstance(error, UserError):
        kind = "invalid_request_error" if error.status < 500 else "server_error"
        return ApiError(error.status, error.message, type=kind, param=error.param, code=error.code)
    if isinstance(error, BackendError):
        # 502 unless the backend is unreachable (503) or timed out (504): an engine that raises with
        # status 500 (the local engine's own failures) is still a failure of the backend, not of the proxy.
        status = error.status if error.status in (502, 503, 504) else 502
        code = "backend_unavailable" if status == 503 else "backend_error"
        who = f"the {error.backend} backend" if error.backend else "the backend"
        return ApiError(status, f"{who} failed: {error.message}", type="server_error", code=code)
    where = f" (request id {request_id})" if request_id else ""
    log.error("unexpected error while serving a request%s", where, exc_info=error)
    return ApiError(
        500,
        f"internal error: {type(error).__name__}{where}; the server log has the details",
        type="server_error",
        code="internal_error",
    )


def allowed_methods(request: Request) -> list[str]:
    """The methods the routes matching this request's path accept (Starlette names only the first
    route's), from the table `app.py` keeps in `app.state.route_methods`."""
    path = request.url.path
    table: list[tuple[Any, set[str]]] = getattr(request.app.state, "route_methods", [])
    methods = {m for regex, route_methods in table if regex.match(path) for m in route_methods}
    return sorted(methods)


def request_id_of(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, error: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(error.status_code)
        headers = dict(error.headers or {})
        if error.status_code == 405:  # every method of the path, not only those of the first route
            headers["Allow"] = ", ".join(allowed_methods(request))
        message = str(error.detail)
        if error.status_code == 405:
            message = f"Method {request.method} not allowed on {request.url.path}; use {headers['Allow']}."
        return ApiError(error.status_code, message, code=code).response(headers)

    # Errors a request can cause are answered here; anything else is a bug, answered 500 by the
    # InternalErrors middleware (guards.py) with the request id.
    @app.exception_handler(RequestValidationError)
    @app.exception_handler(UserError)
    @app.exception_handler(BackendError)
    async def _known(request: Request, error: Exception) -> JSONResponse:
        return from_exception(error, request_id_of(request)).response()
