"""/v1/embeddings (OpenAI's shape), /tokenize and /detokenize (vLLM's shapes, also under /v1).

Embeddings come from the packaged sentence-embedding model (MiniLM, `middleware.embeddings`), the one
retrieval uses: OpenAI-compatible chat servers rarely embed with their chat model, and a 135M decoder's
hidden states make poor sentence vectors. `float` and `base64` (little-endian float32, what the openai
client asks for by default) are both served.

/tokenize takes a `prompt` or chat `messages` (rendered as the backend renders them, tools included);
/detokenize takes `tokens`. Both need the served model's tokenizer in this process (`Backend.tokenizer()`).
"""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import numpy as np
from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt

from backend.base import Tokenizer

from ...embeddings import shared_embedder
from ...tools import prompt_messages, tool_spec
from ...user_errors import InvalidRequest, UnsupportedRequest
from ..schemas import ChatMessageIn
from ..state import ServerState, get_state
from .common import parse_body
from .openai import served_names


class EmbeddingRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    input: str | list[str] | list[int] | list[list[int]]
    model: str | None = None
    encoding_format: str = "float"
    dimensions: StrictInt | None = Field(None, ge=1)


class TokenizeRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: str | None = None
    prompt: str | None = None
    messages: list[ChatMessageIn] | None = None
    tools: list[dict[str, Any]] | None = None
    add_generation_prompt: StrictBool = True
    add_special_tokens: StrictBool = True
    return_token_strs: StrictBool = False


class DetokenizeRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: str | None = None
    tokens: list[StrictInt]


def build_router(auth: Any) -> APIRouter:
    router = APIRouter(dependencies=[Depends(auth)])
    router.add_api_route("/v1/embeddings", embeddings, methods=["POST"])
    for prefix in ("", "/v1"):
        router.add_api_route(f"{prefix}/tokenize", tokenize, methods=["POST"])
        router.add_api_route(f"{prefix}/detokenize", detokenize, methods=["POST"])
    return router


async def embeddings(request: Request) -> dict[str, Any]:
    state = get_state(request)
    body = await parse_body(request, EmbeddingRequest)
    embedder = shared_embedder(None, state.settings.device)
    if body.model is not None and body.model not in (*served_names(state), embedder.name):
        state.check_model(body.model)  # a 404 naming what is served
    if body.encoding_format not in ("float", "base64"):
        raise InvalidRequest("encoding_format must be float or base64", param="encoding_format")
    texts = _texts(body.input)
    vectors, counts = await asyncio.to_thread(lambda: (embedder.embed(texts), embedder.token_counts(texts)))
    if body.dimensions is not None:
        if body.dimensions > vectors.shape[1]:
            raise InvalidRequest(f"dimensions must be at most {vectors.shape[1]}", param="dimensions")
        vectors = vectors[:, : body.dimensions]
        vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    data = [
        {"object": "embedding", "index": i, "embedding": _encoded(v, body.encoding_format)}
        for i, v in enumerate(vectors)
    ]
    tokens = sum(counts)
    return {
        "object": "list",
        "data": data,
        "model": embedder.name,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def _texts(value: Any) -> list[str]:
    texts = [value] if isinstance(value, str) else value
    if not texts or not all(isinstance(t, str) for t in texts):
        raise InvalidRequest("input must be a non-empty string or list of strings", param="input")
    if any(not t for t in texts):
        raise InvalidRequest("input must not contain empty strings", param="input")
    return list(texts)


def _encoded(vector: np.ndarray, encoding: str) -> Any:
    if encoding == "base64":
        return base64.b64encode(vector.astype("<f4").tobytes()).decode("ascii")
    return [float(x) for x in vector]


async def tokenize(request: Request) -> dict[str, Any]:
    state = get_state(request)
    body = await parse_body(request, TokenizeRequest)
    _check(state, body.model)
    tokenizer = _tokenizer(state)
    if (body.prompt is None) == (body.messages is None):
        raise InvalidRequest("send either 'prompt' or 'messages'", param="prompt")
    if body.messages is not None:
        spec = tool_spec(body.tools, None, None)
        text = tokenizer.render_chat(
            prompt_messages([m.as_sent() for m in body.messages], spec),
            add_generation_prompt=body.add_generation_prompt,
        )
    else:
        text = str(body.prompt)
    ids = tokenizer.encode(text)
    out: dict[str, Any] = {
        "count": len(ids),
        "max_model_len": state.backend.capabilities.max_context_tokens,
        "tokens": ids,
    }
    if body.return_token_strs:
        out["token_strs"] = tokenizer.token_texts(ids)
    return out


async def detokenize(request: Request) -> dict[str, Any]:
    state = get_state(request)
    body = await parse_body(request, DetokenizeRequest)
    _check(state, body.model)
    tokenizer = _tokenizer(state)
    if any(t < 0 for t in body.tokens):
        raise InvalidRequest("token ids must be >= 0", param="tokens")
    try:
        return {"prompt": tokenizer.decode(body.tokens)}
    except (OverflowError, IndexError, TypeError) as error:
        raise InvalidRequest(f"token ids out of the vocabulary: {error}", param="tokens") from error


def _check(state: ServerState, model: str | None) -> None:
    if model is not None:
        state.check_model(model)


def _tokenizer(state: ServerState) -> Tokenizer:
    tokenizer = state.backend.tokenizer()
    if tokenizer is None:
        raise UnsupportedRequest(
            f"the {state.backend.name} backend's tokenizer is not on this machine: start the proxy with "
            "--tokenizer /path/to/model"
        )
    return tokenizer
