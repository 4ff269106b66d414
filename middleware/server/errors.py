"""Every error leaves the proxy as OpenAI's body `{"error": {"message", "type", "param", "code"}}`.

Status codes: 400 malformed JSON or invalid parameters (as OpenAI does), 401 missing or wrong API key,
404 unknown model or route, 413 body too large, 422 a valid request the backend cannot serve as asked
(prompt longer than the context, a capability it lacks), 502 the backend failed, 503 it is unreachable.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from backend import BackendError, UserError

from .schemas import ErrorBody, ErrorResponse

log = logging.getLogger("promptfold.server")


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type, param, code

    def response(self, headers: dict[str, str] | None = None) -> JSONResponse:
        body = ErrorResponse(
            error=ErrorBody(message=self.message, type=self.type, param=self.param, code=self.code)
        )
        return JSONResponse(body.model_dump(), status_code=self.status, headers=headers)

    def body(self) -> dict[str, Any]:
        return ErrorResponse(
            error=ErrorBody(message=self.message, type=self.type, param=self.param, code=self.code)
        ).model_dump()


def from_validation(error: ValidationError | RequestValidationError) -> ApiError:
    """The first problem of a pydantic validation, phrased like OpenAI's parameter errors."""
    first = error.errors()[0]
    loc = [str(part) for part in first.get("loc", ()) if part != "body"]
    param = ".".join(loc) or None
    if first.get("type") == "missing":
        return ApiError(
            400, f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter"
        )
    message = first.get("msg", "invalid value")
    if first.get("type") == "extra_forbidden":
        message = "unknown field"
    return ApiError(400, f"Invalid '{param}': {message}.", param=param, code="invalid_value")


def from_exception(error: BaseException) -> ApiError:
    """Map anything raised while serving to the error a client should see."""
    if isinstance(error, ApiError):
        return error
    if isinstance(error, ValidationError | RequestValidationError):
        return from_validation(error)
    if isinstance(error, UserError):  # the only way to a 4xx: errors the caller can fix
        return ApiError(error.status, error.message, param=error.param, code=error.code)
    if isinstance(error, BackendError):
        code = "backend_unavailable" if error.status == 503 else "backend_error"
        who = f"the {error.backend} backend" if error.backend else "the backend"
        return ApiError(error.status, f"{who} failed: {error.message}", type="server_error", code=code)
    if isinstance(error, ValueError):  # a stage's input error may name the parameter (`param`)
        return ApiError(400, str(error), param=getattr(error, "param", None), code="invalid_value")
    log.exception("unexpected error while serving a request", exc_info=error)
    return ApiError(
        500, f"internal error: {type(error).__name__}", type="server_error", code="internal_error"
    )


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, error: ApiError) -> JSONResponse:
        return error.response()

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, error: RequestValidationError) -> JSONResponse:
        return from_validation(error).response()

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, error: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(error.status_code)
        return ApiError(error.status_code, str(error.detail), code=code).response()

    # Errors a request can cause are answered here; only the catch-all below goes through Starlette's
    # ServerErrorMiddleware, which re-raises after answering (uvicorn may then reset the connection).
    @app.exception_handler(UserError)
    @app.exception_handler(ValueError)
    @app.exception_handler(BackendError)
    async def _known(_: Request, error: Exception) -> JSONResponse:
        return from_exception(error).response()

    @app.exception_handler(Exception)
    async def _any(_: Request, error: Exception) -> JSONResponse:
        return from_exception(error).response()
