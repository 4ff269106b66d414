"""The OpenAI wire format, without I/O: how an OpenAI-compatible server's answers read into the seam's types.

Everything the server sent comes back: text, tool calls, refusal, logprobs, the finish reason as it was
named, the usage with its details, and every field the seam has no name for (vLLM's `stop_reason` and
`prompt_logprobs`, SGLang's `matched_stop`, `reasoning_content`, `system_fingerprint`, ...), kept in
`Generation.upstream` / `StreamChunk.upstream` by where it was, for the proxy to give back as it came.
"""

from __future__ import annotations

from typing import Any, cast

from ._remote import openai_logprobs
from .base import BackendError, FinishReason, Generation, StreamChunk, ToolCall, ToolCallDelta, Usage

# Fields the seam reads itself; every other field is kept as the server sent it.
_KNOWN = {
    "response": {"id", "object", "created", "model", "choices", "usage"},
    "choice": {"index", "message", "text", "finish_reason", "logprobs", "delta"},
    "message": {"role", "content", "tool_calls", "refusal"},
    "usage": {"prompt_tokens", "completion_tokens", "total_tokens"},
}
_ABORTED = ("abort", "error")


def unknown_fields(kind: str, body: Any) -> dict[str, Any]:
    """The fields of `body` (a response, choice, message/delta or usage) that the seam does not read."""
    if not isinstance(body, dict):
        return {}
    return {k: v for k, v in body.items() if k not in _KNOWN[kind] and v is not None}


def usage_from_openai(usage: dict[str, Any] | None) -> Usage:
    """OpenAI `usage` (with `prompt_tokens_details.cached_tokens` when the server reports it) as our Usage."""
    usage = usage or {}
    details = usage.get("prompt_tokens_details") or {}
    return Usage(
        int(usage.get("prompt_tokens") or 0),
        int(usage.get("completion_tokens") or 0),
        int(details.get("cached_tokens") or 0),
    )


def finish_reason(raw: str | None, backend: str) -> tuple[FinishReason, list[str]]:
    """The server's finish reason as it named it; "eos" or none is "stop"; an abort raises BackendError."""
    if raw in _ABORTED:
        raise BackendError(
            f"the {backend} server aborted the generation (finish_reason={raw})", backend=backend
        )
    if raw in (None, "eos"):
        return "stop", []
    if raw in ("stop", "length", "tool_calls", "content_filter"):
        return cast(FinishReason, raw), []
    return cast(FinishReason, raw), [f"upstream finish_reason: {raw}"]


def tool_calls_of(raw: Any) -> list[ToolCall] | None:
    """A message's `tool_calls` (or the legacy `function_call`) as typed calls; None when there are none."""
    if not isinstance(raw, list) or not raw:
        return None
    calls = []
    for i, call in enumerate(raw):
        function = call.get("function") or {}
        arguments = function.get("arguments")
        calls.append(
            ToolCall(
                id=str(call.get("id") or f"call_{i}"),
                name=str(function.get("name") or ""),
                arguments=arguments if isinstance(arguments, str) else _json(arguments),
                type=str(call.get("type") or "function"),
            )
        )
    return calls


def tool_call_deltas(raw: Any) -> list[ToolCallDelta] | None:
    if not isinstance(raw, list) or not raw:
        return None
    deltas = []
    for i, call in enumerate(raw):
        function = call.get("function") or {}
        deltas.append(
            ToolCallDelta(
                index=int(call.get("index", i)),
                id=call.get("id"),
                name=function.get("name"),
                arguments=function.get("arguments"),
                type=call.get("type"),
            )
        )
    return deltas


def generation_of(data: Any, chat: bool, backend: str, where: str, latency_s: float) -> Generation:
    """One choice of an OpenAI answer (chat or completions) as a Generation, with what the seam does not
    name kept in `upstream`."""
    try:
        choice = data["choices"][0]
        message = choice["message"] if chat else {}
        text = message.get("content") if chat else choice.get("text")
    except (KeyError, IndexError, TypeError, AttributeError) as exc:
        raise BackendError(f"{where} answered without a choice", backend=backend) from exc
    finish, notes = finish_reason(choice.get("finish_reason"), backend)
    upstream = {
        "response": unknown_fields("response", data),
        "choice": unknown_fields("choice", choice),
        "message": unknown_fields("message", message),
        "usage": unknown_fields("usage", data.get("usage")),
    }
    return Generation(
        text=text or "",
        finish_reason=finish,
        usage=usage_from_openai(data.get("usage")),
        latency_s=latency_s,
        notes=notes,
        logprobs=openai_logprobs(choice.get("logprobs")),
        tool_calls=tool_calls_of(message.get("tool_calls")),
        refusal=message.get("refusal"),
        upstream={k: v for k, v in upstream.items() if v},
    )


class StreamReader:
    """Turns the events of one streamed OpenAI answer into StreamChunks: text, logprobs and tool-call
    deltas as they come; `last()` then gives the closing chunk (finish reason, usage, upstream fields)."""

    def __init__(self, chat: bool, backend: str) -> None:
        self.chat, self.backend = chat, backend
        self.finish: FinishReason | None = None
        self.usage = Usage()
        self.upstream: dict[str, dict[str, Any]] = {}

    def read(self, event: dict[str, Any]) -> list[StreamChunk]:
        if event.get("usage"):
            self.usage = usage_from_openai(event["usage"])
            self._keep("usage", unknown_fields("usage", event["usage"]))
        self._keep("response", unknown_fields("response", event))
        chunks = []
        for choice in event.get("choices") or []:
            delta = choice.get("delta") or {}
            text = delta.get("content") if self.chat else choice.get("text")
            extra = {"delta": unknown_fields("message", delta), "choice": unknown_fields("choice", choice)}
            extra = {k: v for k, v in extra.items() if v}
            calls = tool_call_deltas(delta.get("tool_calls"))
            logprobs = openai_logprobs(choice.get("logprobs"))
            if text or calls or extra or logprobs:
                chunks.append(
                    StreamChunk(text=text or "", logprobs=logprobs, tool_calls=calls, upstream=extra)
                )
            if choice.get("finish_reason"):
                self.finish, _ = finish_reason(choice["finish_reason"], self.backend)
        return chunks

    def last(self, where: str) -> StreamChunk:
        if self.finish is None:
            raise BackendError(f"{where} ended the stream without a finish reason", backend=self.backend)
        return StreamChunk(text="", finish_reason=self.finish, usage=self.usage, upstream=self.upstream)

    def _keep(self, kind: str, fields: dict[str, Any]) -> None:
        if fields:
            self.upstream.setdefault(kind, {}).update(fields)


def _json(value: Any) -> str:
    import json

    return json.dumps(value if value is not None else {}, ensure_ascii=False)
