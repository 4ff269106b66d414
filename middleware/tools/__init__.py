"""Tool calling: the request's tools checked at the edge (spec.py), rendered into the prompt for backends
that do not take tools themselves (render.py), each call decoded under its JSON schema (calls.py, run.py)."""

from .render import prompt_messages
from .run import check_backend, complete_choice, stream_choice
from .spec import ToolSpec, tool_spec

__all__ = ["ToolSpec", "check_backend", "complete_choice", "prompt_messages", "stream_choice", "tool_spec"]
