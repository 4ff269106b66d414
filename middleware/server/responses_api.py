"""The Responses API (`/v1/responses`) in terms of chat: its input items become chat messages, its answer
becomes output items. The route (`routes/responses.py`) runs the same pipeline as chat, stages included.

    input: "text" | [{"role", "content"}, {"type": "function_call", ...}, {"type": "function_call_output", ...}]
    instructions: a system message in front (not carried over by previous_response_id, as in OpenAI's API)
    previous_response_id: the earlier request's input and output, from this process's memory
    tools: flat function tools {"type": "function", "name", "parameters"}; tool_choice likewise
    text.format: text, json_object or json_schema (the chat response_format)
"""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt

from backend import Generation, Usage

from ..user_errors import InvalidRequest, NotFound

KEPT_RESPONSES = 1000  # conversations kept for previous_response_id, oldest dropped first


class ResponsesRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: str | None = None
    input: str | list[dict[str, Any]]
    instructions: str | None = None
    previous_response_id: str | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: StrictBool | None = None
    max_output_tokens: StrictInt | None = Field(None, ge=1)
    temperature: StrictFloat | None = Field(None, ge=0, le=2)
    top_p: StrictFloat | None = Field(None, gt=0, le=1)
    top_logprobs: StrictInt | None = None
    seed: StrictInt | None = None
    stream: StrictBool = False
    store: StrictBool = True
    text: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    promptfold: dict[str, Any] | None = None


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


class ResponseStore:
    """The messages of each stored response (its input, then its output), for `previous_response_id`."""

    def __init__(self) -> None:
        self._kept: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()

    def history(self, response_id: str) -> list[dict[str, Any]]:
        if response_id not in self._kept:
            raise NotFound(
                f"no response with id '{response_id}' is stored here", param="previous_response_id"
            )
        return list(self._kept[response_id])

    def keep(self, response_id: str, messages: list[dict[str, Any]]) -> None:
        self._kept[response_id] = messages
        while len(self._kept) > KEPT_RESPONSES:
            self._kept.popitem(last=False)


def chat_messages(body: ResponsesRequest, earlier: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The conversation as chat messages, without the instructions (they are not stored)."""
    items = [{"role": "user", "content": body.input}] if isinstance(body.input, str) else body.input
    messages = list(earlier)
    for i, item in enumerate(items):
        kind = item.get("type", "message")
        if kind == "message":
            messages.append({"role": item.get("role", "user"), "content": _content(item.get("content"), i)})
        elif kind == "function_call":
            call = {
                "id": item.get("call_id"),
                "type": "function",
                "function": {"name": item.get("name"), "arguments": item.get("arguments", "{}")},
            }
            if messages and messages[-1].get("role") == "assistant" and "tool_calls" in messages[-1]:
                messages[-1]["tool_calls"].append(call)
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            output = item.get("output")
            messages.append(
                {
                    "role": "tool",
                    "tool_call_id": item.get("call_id"),
                    "content": output if isinstance(output, str) else str(output),
                }
            )
        else:
            raise InvalidRequest(f"input items of type '{kind}' are not supported", param=f"input.{i}.type")
    if not messages:
        raise InvalidRequest("input must not be empty", param="input")
    return messages


def _content(content: Any, index: int) -> Any:
    if isinstance(content, str) or content is None:
        return content or ""
    if not isinstance(content, list):
        raise InvalidRequest("content must be text or a list of parts", param=f"input.{index}.content")
    parts = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind not in ("input_text", "output_text", "text"):
            raise InvalidRequest(
                f"content of type '{kind}' is not supported; send text", param=f"input.{index}.content"
            )
        parts.append({"type": "text", "text": part.get("text", "")})
    return parts


def chat_fields(body: ResponsesRequest) -> dict[str, Any]:
    """The chat-completions fields of tools, tool_choice and text.format."""
    fields: dict[str, Any] = {}
    if body.tools:
        fields["tools"] = [_chat_tool(t, i) for i, t in enumerate(body.tools)]
    choice = body.tool_choice
    if isinstance(choice, dict) and choice.get("type") == "function":
        choice = {"type": "function", "function": {"name": choice.get("name")}}
    if choice is not None:
        fields["tool_choice"] = choice
    if body.parallel_tool_calls is not None:
        fields["parallel_tool_calls"] = body.parallel_tool_calls
    form = (body.text or {}).get("format")
    if isinstance(form, dict) and form.get("type") == "json_schema":
        spec = {k: form.get(k) for k in ("name", "schema", "strict") if form.get(k) is not None}
        fields["response_format"] = {"type": "json_schema", "json_schema": spec}
    elif isinstance(form, dict) and form.get("type") == "json_object":
        fields["response_format"] = {"type": "json_object"}
    return fields


def _chat_tool(tool: dict[str, Any], index: int) -> dict[str, Any]:
    if tool.get("type") != "function":
        raise InvalidRequest(
            f"tools of type '{tool.get('type')}' are not supported; use function tools",
            param=f"tools.{index}.type",
        )
    function = {k: tool[k] for k in ("name", "description", "parameters", "strict") if k in tool}
    return {"type": "function", "function": function}


def output_items(g: Generation) -> list[dict[str, Any]]:
    """The answer as output items: a message with its text (if any), then one item per function call."""
    items: list[dict[str, Any]] = []
    if g.text.strip() or not g.tool_calls:
        items.append(message_item(new_id("msg"), g.text, "completed"))
    for call in g.tool_calls or []:
        items.append(function_item(new_id("fc"), call.id, call.name, call.arguments, "completed"))
    return items


def message_item(item_id: str, text: str, status: str) -> dict[str, Any]:
    content = (
        [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]
        if status == "completed"
        else []
    )
    return {"type": "message", "id": item_id, "status": status, "role": "assistant", "content": content}


def function_item(item_id: str, call_id: str, name: str, arguments: str, status: str) -> dict[str, Any]:
    return {
        "type": "function_call",
        "id": item_id,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
        "status": status,
    }


def history_of(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Output items as chat messages, for the next turn (previous_response_id)."""
    fake = ResponsesRequest(input=[{k: v for k, v in i.items() if k != "status"} for i in items])
    return chat_messages(fake, [])


def response_body(
    body: ResponsesRequest,
    response_id: str,
    model: str,
    output: list[dict[str, Any]],
    usage: Usage | None,
    finish_reason: str | None,
    report: dict[str, Any] | None,
) -> dict[str, Any]:
    status = (
        "in_progress"
        if finish_reason is None
        else ("incomplete" if finish_reason == "length" else "completed")
    )
    return {
        "id": response_id,
        "object": "response",
        "created_at": int(time.time()),
        "status": status,
        "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete" else None,
        "error": None,
        "model": model,
        "output": output,
        "instructions": body.instructions,
        "tools": body.tools or [],
        "tool_choice": body.tool_choice or "auto",
        "parallel_tool_calls": body.parallel_tool_calls is not False,
        "temperature": body.temperature,
        "top_p": body.top_p,
        "max_output_tokens": body.max_output_tokens,
        "previous_response_id": body.previous_response_id,
        "store": body.store,
        "text": body.text or {"format": {"type": "text"}},
        "truncation": "disabled",
        "metadata": body.metadata or {},
        "usage": _usage(usage) if usage is not None else None,
        "promptfold": report,
    }


def _usage(usage: Usage) -> dict[str, Any]:
    return {
        "input_tokens": usage.prompt_tokens,
        "input_tokens_details": {"cached_tokens": usage.cached_tokens},
        "output_tokens": usage.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": usage.total_tokens,
    }
