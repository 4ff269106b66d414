"""Per-token logprobs in OpenAI's two shapes: chat (`content: [{token, logprob, bytes, top_logprobs}]`)
and completions (`tokens`, `token_logprobs`, `top_logprobs: [{token: logprob}]`, `text_offset`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from backend import TokenLogprob


def _entry(token: str, logprob: float) -> dict[str, Any]:
    return {"token": token, "logprob": logprob, "bytes": list(token.encode("utf-8"))}


def chat_logprobs(entries: Sequence[TokenLogprob] | None) -> dict[str, Any] | None:
    if entries is None:
        return None
    content = [
        {**_entry(e.token, e.logprob), "top_logprobs": [_entry(t.token, t.logprob) for t in e.top_logprobs]}
        for e in entries
    ]
    return {"content": content, "refusal": None}


def completion_logprobs(
    entries: Sequence[TokenLogprob] | None,
    *,
    prompt: tuple[list[str], list[float | None]] | None = None,
    offset: int = 0,
) -> dict[str, Any] | None:
    """The completions shape; `prompt` (token texts, logprobs) comes first when the prompt is echoed,
    and `offset` is where the answer's text starts in the returned text."""
    if entries is None:
        return None
    tokens: list[str] = []
    values: list[float | None] = []
    tops: list[dict[str, float] | None] = []
    offsets: list[int] = []
    position = 0
    if prompt is not None:
        for token, value in zip(*prompt, strict=True):
            tokens.append(token)
            values.append(value)
            tops.append(None)
            offsets.append(position)
            position += len(token)
    position = max(position, offset)
    for e in entries:
        tokens.append(e.token)
        values.append(e.logprob)
        tops.append({t.token: t.logprob for t in e.top_logprobs} if e.top_logprobs else {e.token: e.logprob})
        offsets.append(position)
        position += len(e.token)
    return {"tokens": tokens, "token_logprobs": values, "top_logprobs": tops, "text_offset": offsets}
