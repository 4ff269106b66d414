"""Chat requests: which messages are long context to compress and which stay as they are.

By default the system prompt and the last user question are left intact, and so is any message
shorter than `min_message_tokens`. A long last user message (documents followed by a question) keeps
its final paragraph, the question, and a short opening instruction (`task.find_task`), and offers the
paragraphs between them as context. Roles are never
touched: only message contents change.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..text import last_user_index
from ..tokens import TokenCounter
from .document import Document, Segment, passages_of
from .options import CompressInputError, CompressOptions
from .spans import split_markup
from .task import find_task


def from_messages(
    messages: Sequence[dict[str, Any]], options: CompressOptions, count_tokens: Callable[[str], int]
) -> tuple[Document, str | None]:
    """The document to compress and the question found in the last user message (or None)."""
    if not messages:
        raise CompressInputError("there are no messages to compress", param="messages")
    for index, message in enumerate(messages):
        if not isinstance(message.get("content"), str):
            raise CompressInputError("message contents must be text", param=f"messages.{index}.content")
    last_user = last_user_index(messages)
    segments: list[Segment] = []
    question: str | None = None
    passage = 0
    sizes = TokenCounter.of(count_tokens).at_least(
        [str(m["content"]) for m in messages], options.min_message_tokens
    )
    for index, message in enumerate(messages):
        content = str(message["content"])
        role = message.get("role")
        fixed = (role == "system" and not options.compress_system) or (
            sizes[index] < options.min_message_tokens
        )
        if index == last_user:
            task = find_task(content, options.question, last_paragraph_asks=True)
            question = task.question.strip() or None
            instruction, body, asked = task.instruction, task.context, task.question_separator + task.question
            if options.compress_question:
                instruction, body, asked = "", content, ""
            elif not (instruction + body).strip() or fixed:
                segments.append(Segment(content, "question", rate=1.0, message=index))
                continue
            if instruction:  # the task's instruction opening the message stays, as the question does
                segments.append(
                    Segment(
                        instruction,
                        "instruction",
                        rate=1.0,
                        message=index,
                        separator=task.instruction_separator,
                    )
                )
            added = _context(body, index, passage)
            passage += sum(1 for s in added if s.passage is not None)
            segments.extend(added)
            if asked:
                segments.append(Segment(asked, "question", rate=1.0, message=index))
            continue
        if fixed:
            segments.append(Segment(content, "instruction", rate=1.0, message=index))
            continue
        added = _context(content, index, passage)
        passage += sum(1 for s in added if s.passage is not None)
        segments.extend(added)
    return Document(segments, messages=[dict(m) for m in messages]), question


def _context(text: str, message: int, first_passage: int) -> list[Segment]:
    segments: list[Segment] = []
    passage = first_passage
    for region in split_markup(text):
        if region.rate is not None:
            segments.append(Segment(region.text, "context", rate=region.rate, message=message))
            continue
        for segment in passages_of(region.text, start=passage):
            segment.message = message
            segments.append(segment)
            passage += 1
    return segments
