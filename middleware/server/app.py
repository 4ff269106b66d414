"""The FastAPI application: OpenAI routes, health, metrics, guards and error handlers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from backend import Backend, open_backend

from ..config import Settings
from ..stages import assemble
from .errors import ApiError, install_error_handlers
from .guards import BodySizeLimit, InternalErrors, RequestIds, api_key_checker
from .routes import completions, compress, corpora, gists, openai, responses, tokens
from .state import ServerState, get_state

log = logging.getLogger("promptfold.server")


def create_app(
    settings: Settings | None = None, *, backend: Backend | None = None, owns_backend: bool = False
) -> FastAPI:
    """An app serving `settings.backend` (opened at startup), or the `backend` given.

    A backend the app opened itself, or one given with `owns_backend=True`, is closed at shutdown.
    """
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = backend is None or owns_backend
        active = backend or await asyncio.to_thread(
            open_backend, settings.backend, **settings.backend_options()
        )
        status = await active.health()  # remote backends learn their model name and limits here
        if not status.ok:
            log.warning("the backend is not healthy yet: %s", status.detail)
        parts = assemble(active, settings)
        app.state.promptfold = ServerState(
            settings, active, parts.pipeline, parts.compression, parts.corpora, parts.gists
        )
        log.info("serving %s through the %s backend", active.model_id, active.name)
        try:
            yield
        finally:
            if owned:
                await active.close()

    app = FastAPI(
        title="promptfold",
        description="OpenAI-compatible proxy that folds prompts and unfolds answers.",
        version="0.1.0",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    key = settings.api_key.get_secret_value() if settings.api_key else None
    auth = api_key_checker(key)
    for surface in (openai, completions, responses, tokens, compress, corpora, gists):
        app.include_router(surface.build_router(auth))
    app.add_api_route("/health", health, methods=["GET"])
    app.add_api_route("/metrics", metrics, methods=["GET"])
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(InternalErrors)
    app.add_middleware(RequestIds)  # outermost: every response, a 413 included, carries its id
    return app


async def health(request: Request) -> JSONResponse:
    state = get_state(request)
    try:
        status = await asyncio.wait_for(state.backend.health(), timeout=10)
    except Exception as error:  # an unreachable backend is a 503, not a crash of the health route
        raise ApiError(
            503, f"backend health check failed: {error}", type="server_error", code="backend_unavailable"
        ) from error
    body: dict[str, Any] = {
        "status": "ok" if status.ok else "unavailable",
        "backend": status.backend,
        "model": status.model,
        "detail": status.detail,
        "capabilities": state.backend.capabilities.__dict__,
    }
    return JSONResponse(body, status_code=200 if status.ok else 503)


async def metrics(request: Request) -> Response:
    state = get_state(request)
    return Response(state.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")
