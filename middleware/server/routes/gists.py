"""`/v1/gists`: train a gist for the served model (POST), list them (GET), show or delete one.

    POST /v1/gists {"prefix": "...", "role": "system", "tokens": 16}   -> 201, the gist's record
    GET  /v1/gists                                                     -> {"object": "list", "data": [...]}
    GET  /v1/gists/{id}   DELETE /v1/gists/{id}

Training runs in the server (on the serving model's weights, the embedded engine's or an SGLang server's
folder on this machine) and the response comes when it is done: minutes on a CPU, so give the client a
long timeout. One training at a time; another POST meanwhile gets 409.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from ...compress.gist.prefix import PrefixSpec
from ...compress.gist.store import GistStore
from ...user_errors import UserError
from ..state import get_state
from .common import parse_body


class GistCreate(BaseModel):
    """The body of POST /v1/gists."""

    model_config = ConfigDict(extra="forbid")

    prefix: str = Field(min_length=1, description="the prefix text the gist stands for")
    role: Literal["system", "user"] = Field("system", description="system message, or start of the user's")
    tokens: int = Field(ge=1, description="k, the number of gist vectors")
    queries: list[str] | None = Field(None, description="queries that follow the prefix (default: sampled)")
    num_queries: int = Field(48, ge=2, le=2000)
    max_answer_tokens: int = Field(64, ge=1, le=1024)
    max_steps: int = Field(150, ge=1, le=100_000)
    batch_size: int = Field(4, ge=1, le=256)
    learning_rate: float = Field(0.02, gt=0, le=10)
    seed: int = 0


def build_router(auth: Any) -> APIRouter:
    router = APIRouter(dependencies=[Depends(auth)])

    async def create(request: Request) -> JSONResponse:
        from ...compress.gist.distill import TrainConfig
        from ...compress.gist.train import GistJob, make_gist

        state = get_state(request)
        body = await parse_body(request, GistCreate)
        training = state.gist_training
        if training.locked():
            raise UserError(
                "a gist is being trained; send this again when it is done", status=409, code="busy"
            )
        job = GistJob(
            PrefixSpec(body.prefix, body.role),
            TrainConfig(
                tokens=body.tokens,
                max_steps=body.max_steps,
                batch_size=body.batch_size,
                learning_rate=body.learning_rate,
                seed=body.seed,
            ),
            queries=body.queries,
            num_queries=body.num_queries,
            max_answer_tokens=body.max_answer_tokens,
            device=state.settings.device if state.settings.device != "cpu" else None,
        )
        async with training:  # a GistError becomes its own status (400, 404, 422) in the error handler
            gist = await make_gist(state.backend, job)
        record = _store(request).save(gist)
        return JSONResponse(record.model_dump(), status_code=201)

    async def list_gists(request: Request) -> dict[str, Any]:
        return {"object": "list", "data": [r.model_dump() for r in _store(request).records()]}

    async def show(gist_id: str, request: Request) -> dict[str, Any]:
        return _store(request).record(gist_id).model_dump()

    async def delete(gist_id: str, request: Request) -> dict[str, Any]:
        _store(request).delete(gist_id)
        return {"id": gist_id, "object": "gist", "deleted": True}

    router.add_api_route("/v1/gists", create, methods=["POST"])
    router.add_api_route("/v1/gists", list_gists, methods=["GET"])
    router.add_api_route("/v1/gists/{gist_id}", show, methods=["GET"])
    router.add_api_route("/v1/gists/{gist_id}", delete, methods=["DELETE"])
    return router


def _store(request: Request) -> GistStore:
    return get_state(request).gists
