"""The proxy stage: compress a request's prompt when its `promptfold.compress` options (or the server's
`stage_defaults["compress"]`, merged at the edge) ask for it.

    {"promptfold": {"compress": {"rate": 0.4, "question": "...", "mode": "question_aware"}}}

The work is the `CompressionService`'s, the same one `/v1/compress`, the SDK, the CLI and batch rewrite use.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ..pipeline import Context, Request
from ..report import StageReport
from .options import CompressOptions
from .result import CompressionResult
from .service import CompressionService

NAME = "compress"


class CompressStage:
    name = NAME

    def __init__(self, service: CompressionService) -> None:
        self.service = service

    async def __call__(self, request: Request, context: Context) -> tuple[Request, StageReport | None]:
        options = request.options.compress
        if options is None:
            return request, None
        if request.embeds is not None:
            return request, StageReport.skipped(NAME, "the prompt is already embeddings")
        if request.messages is None and not isinstance(request.prompt, str):
            return request, StageReport.skipped(NAME, "token-id prompts are not compressed")
        if request.messages is not None:
            # Tool structure is never compressed: calls, results and content parts stay as sent.
            texts = [i for i, m in enumerate(request.messages) if _plain_text(m)]
            if not texts:
                return request, StageReport.skipped(NAME, "no plain-text message to compress")
            result = await self.service.compress(options, messages=[request.messages[i] for i in texts])
        else:
            result = await self.service.compress(options, text=str(request.prompt))
        report = stage_report(result, options)
        if not report.applied:
            return request, report
        if result.messages is not None:
            messages = list(request.messages or [])
            for index, message in zip(texts, result.messages, strict=True):
                messages[index] = message
            return replace(request, messages=messages), report
        return replace(request, prompt=result.text), report


def _plain_text(message: dict[str, Any]) -> bool:
    """A message compression may rewrite: text content, and no part in a tool call's structure."""
    return (
        isinstance(message.get("content"), str)
        and message.get("role") not in ("tool", "function")
        and not message.get("tool_calls")
    )


def stage_report(result: CompressionResult, options: CompressOptions) -> StageReport:
    """The stage's account of one compression (the proxy's `promptfold.stages` entry)."""
    details: dict[str, Any] = {
        **result.as_dict(annotated=options.annotate),
        "scorer": result.scorer or options.scorer or "local",
    }
    for counted in ("original_tokens", "compressed_tokens"):  # already the report's tokens_in / tokens_out
        details.pop(counted)
    if not result.notes:
        details.pop("notes")
    if result.compressed_tokens >= result.original_tokens:
        return StageReport.skipped(
            NAME, result.notes[0] if result.notes else "nothing was removed", **details
        )
    return StageReport(
        NAME,
        applied=True,
        tokens_in=result.original_tokens,
        tokens_out=result.compressed_tokens,
        time_s=sum(result.timings.values()),
        details=details,
    )
