"""The FastAPI application: OpenAI routes, health, metrics, guards and error handlers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.routing import Route

from backend import Backend, open_backend

from ..config import Settings
from ..stages import assemble
from .errors import ApiError, install_error_handlers
from .guards import BodySizeLimit, InternalErrors, RequestIds, api_key_checker
from .metrics import Metrics, RequestMetrics
from .openapi import openapi_document
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
    app_metrics = Metrics()

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
            settings,
            active,
            parts.pipeline,
            parts.compression,
            parts.corpora,
            parts.gists,
            metrics=app_metrics,
            pool=ThreadPoolExecutor(settings.edge_workers, thread_name_prefix="promptfold-edge"),
        )
        log.info("serving %s through the %s backend", active.model_id, active.name)
        try:
            yield
        finally:
            app.state.promptfold.pool.shutdown(wait=False, cancel_futures=True)
            if owned:
                await active.close()

    app = FastAPI(
        title="promptfold",
        description="OpenAI-compatible proxy that folds prompts and unfolds answers.",
        version="0.1.0",
        lifespan=lifespan,
        openapi_url=None,  # served below, behind the API key when one is set (docs_need_key)
        docs_url=None,
        redoc_url=None,
    )
    install_error_handlers(app)
    add_routes(app, settings)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes, timeout_s=settings.body_timeout_s)
    app.add_middleware(InternalErrors)
    app.add_middleware(RequestMetrics, metrics=app_metrics)  # outside the guards: their 413/408/500 count
    app.add_middleware(RequestIds)  # outermost: every response, a 413 included, carries its id
    return app


def add_routes(app: FastAPI, settings: Settings) -> None:
    """Every surface behind the API key (when one is set), /health open, /metrics and the API description
    behind it unless the settings open them, and the complete OpenAPI document."""
    key = settings.api_key.get_secret_value() if settings.api_key else None
    auth = api_key_checker(key)
    surfaces = (openai, completions, responses, tokens, compress, corpora, gists)
    routers = [surface.build_router(auth) for surface in surfaces]
    for router in routers:
        app.include_router(router)
    app.add_api_route("/health", health, methods=["GET"])  # open: load balancers probe it without a key
    app.add_api_route(
        "/metrics", metrics, methods=["GET"], dependencies=_guard(auth, settings.metrics_need_key)
    )
    add_docs_routes(app, _guard(auth, settings.docs_need_key))
    app.openapi = lambda: openapi_document(app)  # type: ignore[method-assign]  # bodies and errors added
    # Which methods each path takes, for the `Allow` header of a 405 (errors.py).
    app.state.route_methods = [
        (route.path_regex, set(route.methods))
        for route in [*app.routes, *(r for router in routers for r in router.routes)]
        if isinstance(route, Route) and route.methods
    ]


def _guard(auth: Any, needed: bool) -> list[Any]:
    return [Depends(auth)] if needed else []


def add_docs_routes(app: FastAPI, dependencies: list[Any]) -> None:
    """/openapi.json, /docs (Swagger UI) and /redoc, as FastAPI would serve them, with `dependencies`."""
    from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html

    async def openapi_json(request: Request) -> JSONResponse:
        return JSONResponse(app.openapi())

    async def swagger(request: Request) -> Response:
        return get_swagger_ui_html(openapi_url="/openapi.json", title=f"{app.title} - Swagger UI")

    async def redoc(request: Request) -> Response:
        return get_redoc_html(openapi_url="/openapi.json", title=f"{app.title} - ReDoc")

    for path, endpoint in (("/openapi.json", openapi_json), ("/docs", swagger), ("/redoc", redoc)):
        app.add_api_route(path, endpoint, methods=["GET"], include_in_schema=False, dependencies=dependencies)


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
