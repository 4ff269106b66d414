"""Server-sent events for the chat and completions routes: one or more prepared pipeline streams (n
choices, a list of prompts) merged into one event stream, each chunk labelled with its choice index.

    data: {chunk}\\n\\n  ...  data: [DONE]\\n\\n

The first chunk is pulled before answering, so that an error the backend raises at once (a prompt too
long, a dead server) still becomes a proper HTTP status instead of a broken 200 stream. Later errors are
reported in-band, as OpenAI does.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from backend import StreamChunk

from ..pipeline import PreparedStream
from ..streams import merged
from .errors import from_exception
from .state import ServerState
from .translate import ChatChunks, TextChunks, usage_of_reports

# Known only once the stream ended: the final chunk's `promptfold` report carries them instead.
_END_HEADERS = ("x-promptfold-prompt-tokens", "x-promptfold-cached-tokens", "x-promptfold-time-ms")


@dataclass
class StreamPlan:
    """What to stream: prepared streams with the choice index each one's chunks start at, how many
    choices there are in all, and what opens each choice (completions' echoed prompt)."""

    streams: list[tuple[int, PreparedStream]]
    choices: int
    include_usage: bool
    opening: Callable[[int], str] | None = None  # text sent first in choice i (echo), or None


async def stream_response(
    state: ServerState, plan: StreamPlan, route: str, render: ChatChunks | TextChunks
) -> StreamingResponse:
    started = time.perf_counter()
    chunks = merged([_relabel(p.chunks, offset) for offset, p in plan.streams])
    try:
        first: StreamChunk | None = await anext(chunks)
    except StopAsyncIteration:
        first = None
    except Exception as error:
        state.record_failure(route, from_exception(error).status, started)
        raise
    reports = [p.report for _, p in plan.streams]

    async def events() -> AsyncIterator[str]:
        status = 200
        try:
            async for event in _events(first, chunks, plan, render, reports):
                yield event
        except Exception as error:  # the stream already started: report in-band, as OpenAI does
            api_error = from_exception(error)
            status = api_error.status
            yield _sse(api_error.body())
        finally:
            state.metrics.observe(
                route,
                status,
                time.perf_counter() - started,
                sum(r.prompt_tokens for r in reports),
                sum(r.completion_tokens for r in reports),
                sum(r.cached_tokens for r in reports),
            )
        yield "data: [DONE]\n\n"

    headers = {k: v for k, v in reports[0].headers().items() if k not in _END_HEADERS}
    headers.update({"cache-control": "no-cache", "x-accel-buffering": "no"})
    return StreamingResponse(events(), media_type="text/event-stream", headers=headers)


async def _events(
    first: StreamChunk | None,
    chunks: AsyncIterator[StreamChunk],
    plan: StreamPlan,
    render: ChatChunks | TextChunks,
    reports: list[Any],
) -> AsyncIterator[str]:
    opened: set[int] = set()
    finished = 0
    upstream_usage: dict[str, Any] | None = None
    pending = first
    while pending is not None:
        chunk = pending
        if chunk.index not in opened:
            opened.add(chunk.index)
            for piece in _open(render, plan, chunk.index):
                yield _sse(piece)
        for piece in _pieces(render, chunk):
            yield _sse(piece)
        if chunk.finish_reason is not None:
            finished += 1
            upstream_usage = upstream_usage or chunk.upstream.get("usage")
            report = _report(reports) if finished == plan.choices else None
            yield _sse(render.finish(chunk.finish_reason, report, chunk.index))
        pending = await anext(chunks, None)
    if plan.include_usage:
        yield _sse(render.usage(usage_of_reports(reports, upstream_usage)))


def _open(render: ChatChunks | TextChunks, plan: StreamPlan, index: int) -> list[BaseModel]:
    if isinstance(render, ChatChunks):
        return [render.role_chunk(index)]
    text = plan.opening(index) if plan.opening else ""
    return [render.content(text, index)] if text else []


def _pieces(render: ChatChunks | TextChunks, chunk: StreamChunk) -> list[BaseModel]:
    if isinstance(render, ChatChunks):
        return list(render.pieces(chunk))
    if not chunk.text and not chunk.logprobs:
        return []
    from .logprobs import completion_logprobs

    return [render.content(chunk.text, chunk.index, completion_logprobs(chunk.logprobs))]


def _report(reports: list[Any]) -> dict[str, Any]:
    if len(reports) == 1:
        return dict(reports[0].as_dict())
    return {"requests": [r.as_dict() for r in reports]}


async def _relabel(chunks: AsyncIterator[StreamChunk], offset: int) -> AsyncIterator[StreamChunk]:
    async for chunk in chunks:
        chunk.index += offset
        yield chunk


def _sse(payload: BaseModel | dict[str, Any]) -> str:
    data = payload.model_dump(exclude_none=True) if isinstance(payload, BaseModel) else payload
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"
