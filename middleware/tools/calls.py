"""The JSON a tool call is written in, the constraint that makes every call valid, and reading it back."""

from __future__ import annotations

import json
import uuid
from typing import Any

from backend import Constraint, ToolCall

from .spec import ToolSpec

MORE_CALLS = r"(\n<tool_call>)?"  # after a call: another one, or the end of the answer


def call_schema(function: dict[str, Any]) -> dict[str, Any]:
    """The JSON Schema of one call of `function`: its name, then arguments valid for its parameters."""
    parameters = function.get("parameters") or {"type": "object", "properties": {}}
    return {
        "type": "object",
        "properties": {"name": {"const": function["name"]}, "arguments": parameters},
        "required": ["name", "arguments"],
        "additionalProperties": False,
    }


def call_constraint(spec: ToolSpec) -> Constraint:
    """A call of one of the functions the request allows (strict, as OpenAI's strict function calling)."""
    schemas = [call_schema(f) for f in spec.functions()]
    schema = schemas[0] if len(schemas) == 1 else {"anyOf": schemas}
    return Constraint.json_schema(schema, strict=True, param="tools")


def new_call_id() -> str:
    return "call_" + uuid.uuid4().hex[:24]


def parse_call(text: str) -> ToolCall | None:
    """The call a constrained generation wrote, or None when it is cut short (max_tokens) or not a call."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        return None
    arguments = data.get("arguments", {})
    return ToolCall(new_call_id(), data["name"], json.dumps(arguments, ensure_ascii=False))
