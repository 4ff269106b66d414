"""What the routes share: settings, the backend, the pipeline, metrics, and model-name checks."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from fastapi import Request

from backend import Backend

from ..compress.gist.store import GistStore
from ..compress.service import CompressionService
from ..config import Settings
from ..pipeline import Completion, Pipeline
from ..retrieval.catalog import Corpora
from .errors import ApiError
from .metrics import Metrics

T = TypeVar("T")
ALIASES = ("default", "promptfold")


@dataclass
class ServerState:
    """Everything a route needs, built once at startup (see `app.py`)."""

    settings: Settings
    backend: Backend
    pipeline: Pipeline
    compression: CompressionService  # the compress stage's own service: /v1/compress shares its models
    corpora: Corpora
    gists: GistStore
    gist_training: asyncio.Lock = field(default_factory=asyncio.Lock)  # one training at a time
    # The proxy's own CPU steps (reading a big body, counting a long prompt's tokens), off the event loop
    # and bounded: compression has its own pool (CompressionService.offload).
    pool: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=2, thread_name_prefix="promptfold-edge")
    )
    metrics: Metrics = field(default_factory=Metrics)
    started_at: float = field(default_factory=time.time)

    async def offload(self, function: Callable[..., T], *args: Any) -> T:
        """Run a blocking step on the proxy's bounded worker pool."""
        return await asyncio.get_running_loop().run_in_executor(self.pool, functools.partial(function, *args))

    @property
    def model_id(self) -> str:
        return self.backend.model_id

    def model_names(self) -> list[str]:
        """The served model's names: the backend's (a remote one says it once reached: "" until then,
        never listed) and `served_model_name`."""
        names = [name for name in (self.backend.model_id, self.settings.served_model_name) if name]
        return list(dict.fromkeys(names))

    def check_model(self, name: str) -> None:
        if name in self.model_names() or name in ALIASES:
            return
        if not self.backend.model_id:
            raise ApiError(
                503,
                f"The model '{name}' cannot be checked: the {self.backend.name} backend has not been reached "
                "yet (GET /health says why); the names 'default' and 'promptfold' always work.",
                type="server_error",
                param="model",
                code="backend_unavailable",
            )
        raise ApiError(
            404,
            f"The model '{name}' does not exist; this server serves {', '.join(self.model_names())}.",
            param="model",
            code="model_not_found",
        )

    async def run(self, work: Awaitable[T], *, route: str, count: bool = True) -> T:
        """Await `work`, recording its tokens (and tokens saved per stage) in the metrics. The request
        itself, its status and latency are counted by the RequestMetrics middleware."""
        result = await work
        if count:
            completions = result if isinstance(result, list) else [result]
            reports = [c.report for c in completions if isinstance(c, Completion)]
            self.metrics.observe(
                route,
                200,
                0.0,
                sum(r.prompt_tokens for r in reports),
                sum(r.completion_tokens for r in reports),
                sum(r.cached_tokens for r in reports),
            )
            for report in reports:
                for stage in report.stages:
                    if stage.applied and stage.tokens_in is not None and stage.tokens_out is not None:
                        self.metrics.tokens_saved.labels(stage.stage).inc(
                            max(stage.tokens_in - stage.tokens_out, 0)
                        )
        return result

    def record_failure(self, route: str, status: int, started: float) -> None:
        """Kept for routes that report a failure themselves; the middleware counts the response's status."""
        self.metrics.observe(route, status, time.perf_counter() - started)


def get_state(request: Request) -> ServerState:
    state: ServerState | None = getattr(request.app.state, "promptfold", None)
    if state is None:
        raise ApiError(503, "the server is still starting", type="server_error", code="starting")
    return state
