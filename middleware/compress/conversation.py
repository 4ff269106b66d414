"""Chat messages compressed one by one, so that a message compresses the same way in every request it
appears in (a system prompt, a few-shot block, an earlier turn), and its compression can be cached.

A user message keeps its last paragraph (its question) whether or not it is the last message, so a turn
reads the same when the conversation grows. Plain mode only: question-aware compression ranks every
message by the current question, and a `target_tokens` budget is shared by the messages, so both compress
the conversation as one document (`Compressor.compress_messages`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .options import CompressInputError, CompressOptions
from .result import CompressionResult, Piece


def compress_one_by_one(options: CompressOptions, messages: Sequence[dict[str, Any]]) -> bool:
    """Whether `messages` are compressed message by message (see the module docstring)."""
    return options.effective_mode == "plain" and options.target_tokens is None and len(messages) > 1


def check_contents(messages: Sequence[dict[str, Any]]) -> list[str]:
    if not messages:
        raise CompressInputError("there are no messages to compress", param="messages")
    for index, message in enumerate(messages):
        if not isinstance(message.get("content"), str):
            raise CompressInputError("message contents must be text", param=f"messages.{index}.content")
    return [str(m["content"]) for m in messages]


def compressible(message: dict[str, Any], tokens: int, options: CompressOptions) -> bool:
    """A system prompt (unless `compress_system`) and a message under `min_message_tokens` stay as sent."""
    if message.get("role") == "system" and not options.compress_system:
        return False
    return tokens >= options.min_message_tokens


def combine(
    messages: Sequence[dict[str, Any]],
    sizes: list[int],
    results: dict[int, CompressionResult],
    hits: dict[int, bool],
) -> CompressionResult:
    """One result for the conversation from the results of its compressed messages (by index)."""
    out: list[dict[str, Any]] = []
    pieces: list[Piece] = []
    dropped: list[int] = []
    order: list[int] = []
    timings: dict[str, float] = {}
    notes: list[str] = []
    original = compressed = target = passages = 0
    for index, message in enumerate(messages):
        if pieces:
            pieces.append(Piece("\n", True))
        result = results.get(index)
        if result is None:
            out.append(dict(message))
            pieces.append(Piece(str(message["content"]), True))
            original, compressed, target = (
                original + sizes[index],
                compressed + sizes[index],
                target + sizes[index],
            )
            continue
        out.append(result.messages[0] if result.messages else {**message, "content": result.text})
        pieces.extend(result.pieces)
        original += result.original_tokens
        compressed += result.compressed_tokens
        target += result.target_tokens
        dropped += [passages + p for p in result.dropped_passages]
        order += [passages + p for p in result.passage_order]
        passages += len(result.dropped_passages) + len(result.passage_order)
        for phase, seconds in result.timings.items():
            timings[phase] = timings.get(phase, 0.0) + seconds
        notes += [n for n in result.notes if n not in notes and not n.startswith("the input is already")]
    if not results:
        notes.append(
            "nothing to compress: every part is kept verbatim (system prompt, question, short messages)"
        )
    cache = [{"message": i, "cache_hit": hits[i]} for i in sorted(results)]
    return CompressionResult(
        text="\n".join(str(m["content"]) for m in out),
        original_tokens=original,
        compressed_tokens=compressed,
        target_tokens=target,
        messages=out,
        pieces=pieces,
        dropped_passages=dropped,
        passage_order=order,
        mode="plain",
        timings=timings,
        notes=notes,
        cache=cache,
    )
