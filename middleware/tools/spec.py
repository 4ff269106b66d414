"""What a request asks about tools, checked once at the edge: the function tools, the tool choice and
whether calls may come several at once."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ..user_errors import InvalidRequest

NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # OpenAI's rule for function names
MODES = ("none", "auto", "required")


@dataclass(frozen=True)
class ToolSpec:
    """`tools` are OpenAI function tools as the client sent them ({"type": "function", "function": {...}});
    `choice` is "none", "auto", "required" or the name of the one function to call; `raw` keeps the
    request's own fields (tools, tool_choice, parallel_tool_calls) for servers that take tools themselves."""

    tools: list[dict[str, Any]]
    choice: str = "auto"
    parallel: bool = True
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def calls_allowed(self) -> bool:
        return self.choice != "none" and bool(self.tools)

    @property
    def forced(self) -> bool:
        """The answer must be tool calls (required, or one named function)."""
        return self.choice not in ("none", "auto")

    def functions(self) -> list[dict[str, Any]]:
        """The function definitions the answer may call ({"name", "description", "parameters"})."""
        chosen = [t["function"] for t in self.tools]
        if self.choice not in MODES:
            chosen = [f for f in chosen if f["name"] == self.choice]
        return chosen


def tool_spec(tools: Any, tool_choice: Any, parallel: Any) -> ToolSpec | None:
    """The ToolSpec of a request's fields (None without tools); InvalidRequest names the bad field."""
    raw = {
        k: v
        for k, v in (("tools", tools), ("tool_choice", tool_choice), ("parallel_tool_calls", parallel))
        if v is not None
    }
    if not tools:
        if tool_choice not in (None, "none"):
            raise InvalidRequest("tool_choice is only allowed when tools are given", param="tool_choice")
        return None
    checked = [_checked_tool(tool, i) for i, tool in enumerate(tools)]
    names = [t["function"]["name"] for t in checked]
    choice = _choice(tool_choice, names)
    return ToolSpec(checked, choice, parallel is not False, raw)


def _checked_tool(tool: Any, index: int) -> dict[str, Any]:
    where = f"tools.{index}"
    if not isinstance(tool, dict) or tool.get("type", "function") != "function":
        raise InvalidRequest("only tools of type 'function' are supported", param=f"{where}.type")
    function = tool.get("function")
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise InvalidRequest("a function tool needs function.name", param=f"{where}.function.name")
    if not NAME.match(function["name"]):
        raise InvalidRequest(
            "function names are 1-64 letters, digits, underscores or dashes", param=f"{where}.function.name"
        )
    parameters = function.get("parameters")
    if parameters is not None and not isinstance(parameters, dict):
        raise InvalidRequest("function.parameters must be a JSON Schema object", param=f"{where}.function")
    return {"type": "function", "function": function}


def _choice(tool_choice: Any, names: list[str]) -> str:
    if tool_choice is None:
        return "auto"
    if isinstance(tool_choice, str):
        if tool_choice not in MODES:
            raise InvalidRequest(
                "tool_choice must be none, auto, required or a named function", param="tool_choice"
            )
        return tool_choice
    function = tool_choice.get("function") if isinstance(tool_choice, dict) else None
    name = function.get("name") if isinstance(function, dict) else None
    if not isinstance(name, str):
        raise InvalidRequest(
            'a named tool_choice is {"type": "function", "function": {"name": ...}}', param="tool_choice"
        )
    if name not in names:
        raise InvalidRequest(f"tool_choice names '{name}', which is not among the tools", param="tool_choice")
    return name
