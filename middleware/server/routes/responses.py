"""POST /v1/responses: OpenAI's Responses API over the same pipeline as chat (stages, tools, constraints).

Streaming sends the API's typed events, each with a `sequence_number`: response.created, in_progress,
output_item.added, content_part.added, output_text.delta ... done, function_call_arguments.delta /
done for calls, output_item.done, and response.completed (or .incomplete) with the whole response.
`previous_response_id` continues a conversation this process stored (`store` is true by default).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import ValidationError

from backend import StreamChunk, Usage

from ...pipeline import PreparedStream
from ...user_errors import validation_error
from ..errors import from_exception
from ..responses_api import (
    ResponsesRequest,
    ResponseStore,
    chat_fields,
    chat_messages,
    function_item,
    history_of,
    message_item,
    new_id,
    output_items,
    response_body,
)
from ..schemas import ChatCompletionRequest
from ..state import get_state
from ..translate import chat_request
from .common import options_of, parse_body


def build_router(auth: Any) -> APIRouter:
    router = APIRouter(dependencies=[Depends(auth)])
    router.add_api_route("/v1/responses", create_response, methods=["POST"])
    return router


def _store(request: Request) -> ResponseStore:
    store = getattr(request.app.state, "responses_store", None)
    if store is None:
        store = request.app.state.responses_store = ResponseStore()
    return store


async def create_response(request: Request) -> Any:
    state = get_state(request)
    body = await parse_body(request, ResponsesRequest)
    if body.model is not None:
        state.check_model(body.model)
    store = _store(request)
    earlier = store.history(body.previous_response_id) if body.previous_response_id else []
    messages = chat_messages(body, earlier)
    system = [{"role": "system", "content": body.instructions}] if body.instructions else []
    chat = {
        "messages": system + messages,
        "max_tokens": body.max_output_tokens,
        "temperature": body.temperature,
        "top_p": body.top_p,
        "seed": body.seed,
        **({"logprobs": True, "top_logprobs": body.top_logprobs} if body.top_logprobs else {}),
        **chat_fields(body),
    }
    try:
        chat_body = ChatCompletionRequest.model_validate({k: v for k, v in chat.items() if v is not None})
    except ValidationError as error:
        raise validation_error(error) from error
    options = options_of(body.promptfold, request, state)
    pipeline_request = chat_request(chat_body, state.settings.default_max_tokens, options)
    response_id = new_id("resp")
    if body.stream:
        prepared = await state.run(state.pipeline.stream(pipeline_request), route="responses", count=False)
        writer = _Events(body, response_id, state.model_id, prepared)
        first = await anext(prepared.chunks, None)  # an error at once is still an HTTP status

        async def events() -> AsyncIterator[str]:
            async for event in writer.run(first):
                yield event
            if body.store:
                store.keep(response_id, messages + history_of(writer.output))

        return StreamingResponse(
            events(), media_type="text/event-stream", headers={"cache-control": "no-cache"}
        )
    completion = await state.run(state.pipeline.complete(pipeline_request), route="responses")
    answer = completion.choices[0]
    output = output_items(answer)
    if body.store:
        store.keep(response_id, messages + history_of(output))
    report = completion.report
    usage = Usage(report.prompt_tokens, report.completion_tokens, report.cached_tokens)
    data = response_body(
        body, response_id, state.model_id, output, usage, answer.finish_reason, report.as_dict()
    )
    return JSONResponse(data, headers=report.headers())


class _Events:
    """Writes the typed events of one streamed response."""

    def __init__(
        self, body: ResponsesRequest, response_id: str, model: str, prepared: PreparedStream
    ) -> None:
        self.body, self.id, self.model, self.prepared = body, response_id, model, prepared
        self.sequence = 0
        self.output: list[dict[str, Any]] = []
        self._text: dict[str, Any] | None = None  # the message item being written
        self._calls: dict[int, dict[str, Any]] = {}  # call index -> its function_call item

    def event(self, kind: str, **fields: Any) -> str:
        data = {"type": kind, "sequence_number": self.sequence, **fields}
        self.sequence += 1
        return f"event: {kind}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"

    def snapshot(self, finish: str | None, usage: Usage | None = None, report: Any = None) -> dict[str, Any]:
        return response_body(self.body, self.id, self.model, list(self.output), usage, finish, report)

    async def run(self, first: StreamChunk | None) -> AsyncIterator[str]:
        yield self.event("response.created", response=self.snapshot(None))
        yield self.event("response.in_progress", response=self.snapshot(None))
        chunk, last = first, None
        try:
            while chunk is not None:
                for event in self.piece(chunk):
                    yield event
                last = chunk if chunk.finish_reason is not None else last
                chunk = await anext(self.prepared.chunks, None)
        except Exception as error:  # started already: report in-band
            body = from_exception(error).body()["error"]
            yield self.event(
                "error", code=body.get("code"), message=body.get("message"), param=body.get("param")
            )
            return
        for event in self.close_items():
            yield event
        finish = last.finish_reason if last is not None else "stop"
        report = self.prepared.report
        usage = Usage(report.prompt_tokens, report.completion_tokens, report.cached_tokens)
        kind = "response.incomplete" if finish == "length" else "response.completed"
        yield self.event(kind, response=self.snapshot(finish, usage, report.as_dict()))

    def piece(self, chunk: StreamChunk) -> list[str]:
        out = []
        if chunk.text:
            if self._text is None:
                out += self.open_text()
            self._text["text"] += chunk.text  # type: ignore[index]
            out.append(
                self.event(
                    "response.output_text.delta", **self._where(self._text), delta=chunk.text, logprobs=[]
                )
            )
        for delta in chunk.tool_calls or []:
            out += self.close_text()
            if delta.index not in self._calls:
                item = function_item(
                    new_id("fc"), delta.id or new_id("call"), delta.name or "", "", "in_progress"
                )
                self._calls[delta.index] = item
                self.output.append(item)
                out.append(
                    self.event("response.output_item.added", output_index=len(self.output) - 1, item=item)
                )
            item = self._calls[delta.index]
            if delta.arguments:
                item["arguments"] += delta.arguments
                out.append(
                    self.event(
                        "response.function_call_arguments.delta",
                        item_id=item["id"],
                        output_index=self.output.index(item),
                        delta=delta.arguments,
                    )
                )
        return out

    def open_text(self) -> list[str]:
        item = message_item(new_id("msg"), "", "in_progress")
        self.output.append(item)
        self._text = {"item": item, "text": ""}
        part = {"type": "output_text", "text": "", "annotations": []}
        index = len(self.output) - 1
        return [
            self.event("response.output_item.added", output_index=index, item=item),
            self.event("response.content_part.added", **self._where(self._text), part=part),
        ]

    def close_text(self) -> list[str]:
        if self._text is None:
            return []
        where, text = self._where(self._text), self._text["text"]
        done = message_item(self._text["item"]["id"], text, "completed")
        self.output[where["output_index"]] = done
        part = done["content"][0]
        self._text = None
        return [
            self.event("response.output_text.done", **where, text=text, logprobs=[]),
            self.event("response.content_part.done", **where, part=part),
            self.event("response.output_item.done", output_index=where["output_index"], item=done),
        ]

    def close_items(self) -> list[str]:
        out = self.close_text()
        for item in self._calls.values():
            item["status"] = "completed"
            index = self.output.index(item)
            out.append(
                self.event(
                    "response.function_call_arguments.done",
                    item_id=item["id"],
                    output_index=index,
                    name=item["name"],
                    arguments=item["arguments"],
                )
            )
            out.append(self.event("response.output_item.done", output_index=index, item=item))
        if not self.output:  # an empty answer is still one (empty) message
            out += self.open_text() + self.close_text()
        return out

    def _where(self, text: dict[str, Any]) -> dict[str, Any]:
        return {
            "item_id": text["item"]["id"],
            "output_index": self.output.index(text["item"]),
            "content_index": 0,
        }
