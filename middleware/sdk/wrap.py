"""`Middleware.wrap(client)`: an OpenAI client whose chat completions go through promptfold's pipeline.

The wrapped client keeps talking to the server the original points at (its base_url and API key), per
model name; promptfold's stages run here, in front of it. Responses are the openai package's own types
(`ChatCompletion`, `ChatCompletionChunk`) with promptfold's report in `model_extra["promptfold"]`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from ..options import request_options
from ..pipeline import Pipeline
from ..server.schemas import ChatCompletionRequest
from ..server.translate import ChatChunks, chat_completion, chat_request
from ..user_errors import InvalidRequest, validation_error

if TYPE_CHECKING:
    from .client import Middleware

# Arguments of the openai client that shape its HTTP call, not the request body.
_TRANSPORT_ARGS = ("extra_headers", "extra_query", "timeout")


class InvalidChatRequest(InvalidRequest):
    """The arguments to `chat.completions.create` do not make a valid request (message names the field)."""


def wrap_openai_client(client: Any, middleware: Middleware) -> Any:
    import openai

    pipelines = _Pipelines(client, middleware)
    if isinstance(client, openai.AsyncOpenAI):
        return _Client(client, _AsyncCompletions(client.chat.completions, pipelines, middleware))
    return _Client(client, _Completions(client.chat.completions, pipelines, middleware))


class _Client:
    def __init__(self, client: Any, completions: Any) -> None:
        self._client = client
        self.chat = _Delegate(client.chat, completions=completions)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


class _Delegate:
    """An object that answers the given attributes itself and everything else from `inner`."""

    def __init__(self, inner: Any, **own: Any) -> None:
        self._inner = inner
        self.__dict__.update(own)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class _Pipelines:
    """One pipeline per model name, each with an OpenAI-compatible backend at the client's server."""

    def __init__(self, client: Any, middleware: Middleware) -> None:
        self.client = client
        self.middleware = middleware
        self._by_model: dict[str, Pipeline] = {}

    async def get(self, model: str) -> Pipeline:
        """The pipeline for `model` (runs on the SDK loop, which owns the backends' HTTP clients)."""
        if model not in self._by_model:
            self._by_model[model] = self._build(model)
        return self._by_model[model]

    def _build(self, model: str) -> Pipeline:
        from backend import open_backend

        from ..stages import build_pipeline

        url = str(self.client.base_url)
        spec = (
            "openai+https://" + url.removeprefix("https://")
            if url.startswith("https://")
            else ("openai://" + url.removeprefix("http://"))
        )
        backend = open_backend(
            spec, api_key=self.client.api_key, model_id=model, tokenizer=self.middleware.settings.tokenizer
        )
        return build_pipeline(backend, self.middleware.settings)


def _parse(kwargs: dict[str, Any], middleware: Middleware) -> tuple[ChatCompletionRequest, Any]:
    body = {k: v for k, v in kwargs.items() if k not in _TRANSPORT_ARGS and k != "extra_body"}
    body.update(kwargs.get("extra_body") or {})
    try:
        try:
            parsed = ChatCompletionRequest.model_validate(body)
        except ValidationError as error:
            raise validation_error(error) from error
        if not parsed.model:
            raise InvalidRequest("the wrapped client needs a model name", param="model")
        options = request_options(parsed.promptfold, middleware.settings.stage_defaults)
        request = chat_request(parsed, middleware.settings.default_max_tokens, options)
    except InvalidRequest as error:
        raise InvalidChatRequest(error.message, param=error.param) from error
    return parsed, request


class _Completions:
    def __init__(self, inner: Any, pipelines: _Pipelines, middleware: Middleware) -> None:
        self._inner, self._pipelines, self._middleware = inner, pipelines, middleware

    def create(self, **kwargs: Any) -> Any:
        from openai.types.chat import ChatCompletion

        parsed, request = _parse(kwargs, self._middleware)
        loop = self._middleware._loop
        model = str(parsed.model)
        pipeline = loop.run(self._pipelines.get(model))
        if parsed.stream:
            prepared = loop.run(pipeline.stream(request))
            return _sync_chunks(loop.iterate(prepared.chunks), prepared.report, model, parsed.n)
        completion = loop.run(pipeline.complete(request))
        return ChatCompletion.model_validate(chat_completion(completion, model).body())

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class _AsyncCompletions(_Completions):
    async def create(self, **kwargs: Any) -> Any:  # type: ignore[override]
        from openai.types.chat import ChatCompletion

        parsed, request = _parse(kwargs, self._middleware)
        loop = self._middleware._loop
        model = str(parsed.model)
        pipeline = await loop.run_async(self._pipelines.get(model))
        if parsed.stream:
            prepared = await loop.run_async(pipeline.stream(request))
            return _async_chunks(loop.iterate_async(prepared.chunks), prepared.report, model, parsed.n)
        completion = await loop.run_async(pipeline.complete(request))
        return ChatCompletion.model_validate(chat_completion(completion, model).body())


def _sync_chunks(chunks: Iterator[Any], report: Any, model: str, n: int) -> Iterator[Any]:
    from openai.types.chat import ChatCompletionChunk

    render, finished = ChatChunks(model), [0]
    for chunk in chunks:
        for piece in _render(render, chunk, report, n, finished):
            yield ChatCompletionChunk.model_validate(piece)


async def _async_chunks(chunks: AsyncIterator[Any], report: Any, model: str, n: int) -> AsyncIterator[Any]:
    from openai.types.chat import ChatCompletionChunk

    render, finished = ChatChunks(model), [0]
    async for chunk in chunks:
        for piece in _render(render, chunk, report, n, finished):
            yield ChatCompletionChunk.model_validate(piece)


def _render(render: ChatChunks, chunk: Any, report: Any, n: int, finished: list[int]) -> list[dict[str, Any]]:
    """The OpenAI chunks for one pipeline chunk (role first for a new choice); the report goes with the
    last choice's finish."""
    pieces = [p.model_dump(exclude_none=True) for p in render.pieces(chunk)]
    if chunk.finish_reason is not None:
        finished[0] += 1
        done = report.as_dict() if finished[0] == n else None
        pieces.append(render.finish(chunk.finish_reason, done, chunk.index).model_dump(exclude_none=True))
    return pieces
