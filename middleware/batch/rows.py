"""The row seam of a batch job: what one row asks to rewrite, what comes back, and the rewriter between.

`row_input` decides whether a row can be rewritten at all; a row that cannot (no prompt, a prompt that is
not text, messages that are not a list of message objects...) gets a one-line reason, which the job writes
into that row's `promptfold_error` instead of stopping.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass
class RowInput:
    """What one row asks to rewrite: a prompt text or chat messages, and an optional question."""

    text: str | None = None
    messages: list[dict[str, Any]] | None = None
    question: str | None = None


@dataclass
class RowOutput:
    rewritten: str | list[dict[str, Any]] | None = None
    original_tokens: int | None = None
    tokens: int | None = None
    error: str | None = None

    @classmethod
    def failed(cls, error: str) -> RowOutput:
        return cls(error=error)


class Rewriter(Protocol):
    """Rewrites a batch of rows at once (the scorer sees them together); one output per input, in order."""

    def rewrite(self, rows: list[RowInput]) -> list[RowOutput]: ...

    def describe(self) -> dict[str, Any]:
        """The options that shape the output (part of the job's identity for resuming)."""
        ...


def row_input(
    row: dict[str, Any], *, field: str | None, messages_field: str | None, question_field: str | None
) -> RowInput | str:
    """The rewrite input of a row, or the reason it has none (one line)."""
    question = row.get(question_field) if question_field else None
    if question is not None and not isinstance(question, str):
        return f"'{question_field}' must be text, got {type(question).__name__}"
    if messages_field:
        messages = _messages(row, messages_field)
        return messages if isinstance(messages, str) else RowInput(messages=messages, question=question)
    assert field is not None
    text = row.get(field)
    if text is None:
        return f"the row has no value in '{field}'" if field in row else f"the row has no field '{field}'"
    if not isinstance(text, str):
        return f"'{field}' must be text, got {type(text).__name__}"
    if not text.strip():
        return f"'{field}' is empty"
    return RowInput(text=text, question=question)


def _messages(row: dict[str, Any], name: str) -> list[dict[str, Any]] | str:
    messages = row.get(name)
    if messages is None:
        return f"the row has no value in '{name}'" if name in row else f"the row has no field '{name}'"
    if isinstance(messages, str):  # CSV cells (and JSON-text Parquet columns) hold JSON text
        try:
            messages = json.loads(messages)
        except ValueError:
            return f"'{name}' is not a JSON list of messages"
    if not isinstance(messages, list):
        return f"'{name}' must be a list of messages, got {type(messages).__name__}"
    if not messages:
        return f"'{name}' is an empty list"
    for number, message in enumerate(messages):
        if not isinstance(message, dict):
            return f"'{name}' item {number} must be a message object, got {type(message).__name__}"
    return messages
