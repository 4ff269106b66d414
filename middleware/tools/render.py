"""Chat messages as a chat template that knows nothing of tools can take them: text content only, tools
described in the system message, calls and results written in tags. The documented format:

    system:    ...the system prompt...  followed by TOOLS_INTRO and one JSON line per function in <tools>
    assistant: optional text, then one block per call:
               <tool_call>
               {"name": "get_weather", "arguments": {"city": "Paris"}}
               </tool_call>
    tool:      sent as a user turn: <tool_response>
               {"name": "get_weather", "content": "..."}   (or the bare content when it has no name)
               </tool_response>

It is the Hermes-style layout that many open models were tuned on. A model whose own template has a
tools section in that layout (Qwen2.5, Qwen3, Hermes: `Tokenizer.tool_format == "hermes"`) is rendered by
its template instead (`template_messages`), so it reads tools the way it was trained to. The embedded
engine and SGLang get their prompts this way; an OpenAI-compatible server takes the messages and tools as
the client sent them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ..user_errors import InvalidRequest
from .spec import ToolSpec

CALL_OPEN, CALL_CLOSE = "<tool_call>", "</tool_call>"
RESULT_OPEN, RESULT_CLOSE = "<tool_response>", "</tool_response>"
TOOLS_INTRO = (
    "You can call functions to help you answer. They are described below, one JSON object per line, "
    "between <tools> and </tools>.\n<tools>\n{functions}\n</tools>\n\n"
    "To call a function, write a JSON object with its name and its arguments between <tool_call> and "
    "</tool_call>, like this:\n"
    '<tool_call>\n{{"name": "the_function", "arguments": {{"argument": "value"}}}}\n</tool_call>\n'
    "Write one such block per call. Results come back between <tool_response> and </tool_response>."
)


def prompt_messages(messages: Sequence[dict[str, Any]], spec: ToolSpec | None) -> list[dict[str, str]]:
    """`messages` (OpenAI shapes) as {"role", "content": str} messages, with the tools of `spec` described
    in the system message when calls are allowed. Content parts other than text are an InvalidRequest."""
    out = [_flat(message, i) for i, message in enumerate(messages)]
    if spec is None or not spec.calls_allowed:
        return out
    section = tools_section(spec.functions())
    if out and out[0]["role"] == "system":
        out[0] = {"role": "system", "content": f"{out[0]['content']}\n\n{section}".lstrip()}
    else:
        out.insert(0, {"role": "system", "content": section})
    return out


def template_messages(messages: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """`messages` for a chat template with its own tools section: text content, roles and tool calls
    kept (arguments as objects, as such templates expect them)."""
    out = []
    for i, message in enumerate(messages):
        flat: dict[str, Any] = {
            "role": message.get("role") or "user",
            "content": _text(message.get("content"), i),
        }
        if message.get("tool_calls"):
            flat["tool_calls"] = [
                {**call, "function": {**call["function"], "arguments": _arguments_object(call["function"])}}
                for call in message["tool_calls"]
            ]
        for key in ("name", "tool_call_id"):
            if message.get(key):
                flat[key] = message[key]
        out.append(flat)
    return out


def _arguments_object(function: dict[str, Any]) -> Any:
    try:
        return json.loads(function.get("arguments") or "{}")
    except (json.JSONDecodeError, TypeError):
        return function.get("arguments")


def tools_section(functions: Sequence[dict[str, Any]]) -> str:
    lines = "\n".join(json.dumps({"type": "function", "function": f}, ensure_ascii=False) for f in functions)
    return TOOLS_INTRO.format(functions=lines)


def call_block(name: str, arguments: str) -> str:
    """One call as the model is taught to write it."""
    return f'{CALL_OPEN}\n{{"name": {json.dumps(name)}, "arguments": {_arguments_json(arguments)}}}\n{CALL_CLOSE}'


def _flat(message: dict[str, Any], index: int) -> dict[str, str]:
    role = str(message.get("role") or "user")
    content = _text(message.get("content"), index)
    if role == "developer":
        role = "system"
    if role == "assistant" and message.get("tool_calls"):
        blocks = [_call_block(call, index) for call in message["tool_calls"]]
        content = "\n".join([content, *blocks] if content else blocks)
    elif role in ("tool", "function"):
        name = message.get("name")
        body = json.dumps({"name": name, "content": content}, ensure_ascii=False) if name else content
        role, content = "user", f"{RESULT_OPEN}\n{body}\n{RESULT_CLOSE}"
    return {"role": role, "content": content}


def _call_block(call: Any, index: int) -> str:
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise InvalidRequest("a tool call needs function.name", param=f"messages.{index}.tool_calls")
    return call_block(function["name"], function.get("arguments") or "{}")


def _text(content: Any, index: int) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    if not isinstance(content, list):
        raise InvalidRequest("content must be text or a list of parts", param=f"messages.{index}.content")
    texts = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind not in ("text", "input_text", "output_text") or not isinstance(part.get("text"), str):
            raise InvalidRequest(
                f"content parts of type '{kind}' are not supported by this backend; send text",
                param=f"messages.{index}.content",
            )
        texts.append(part["text"])
    return "\n".join(texts)


def _arguments_json(arguments: str) -> str:
    """Arguments as compact-ish JSON, whatever spacing the client stored them with."""
    try:
        return json.dumps(json.loads(arguments), ensure_ascii=False)
    except (json.JSONDecodeError, TypeError):
        return json.dumps(arguments)  # not JSON: kept as a string so the block stays well-formed
