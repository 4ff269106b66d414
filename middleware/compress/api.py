"""One-call SDK surface: `compress(text_or_messages, rate=...)` with the packaged SmolLM2 as scorer.

It goes through a `CompressionService`, like the proxy, the CLI and batch rewrite."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Sequence
from typing import Any

from .compressor import Compressor
from .result import CompressionResult
from .service import CompressionService


@functools.lru_cache(maxsize=2)
def default_service(model: str | None = None, device: str = "cpu") -> CompressionService:
    """A service scoring with `model` (default SmolLM2) in this process, shared by every call."""
    return CompressionService(model=model, device=device)


async def acompress(
    prompt: str | Sequence[dict[str, Any]],
    *,
    service: CompressionService | None = None,
    compressor: Compressor | None = None,
    **options: Any,
) -> CompressionResult:
    """Compress a text or chat messages; `options` are the `compress` fields (rate, question, ...).
    `compressor` runs the service around an existing Compressor (its scorer and ranker)."""
    from ..options import request_options
    from .options import CompressInputError

    if compressor is not None:
        service = CompressionService.around(compressor)
    service = service or default_service()
    parsed = request_options({"compress": options}, where=None).compress
    if parsed is None:
        raise CompressInputError("compression is turned off (enabled=false)", param="compress.enabled")
    if isinstance(prompt, str):
        return await service.compress(parsed, text=prompt)
    return await service.compress(parsed, messages=list(prompt))


def compress(
    prompt: str | Sequence[dict[str, Any]],
    *,
    service: CompressionService | None = None,
    compressor: Compressor | None = None,
    **options: Any,
) -> CompressionResult:
    """Blocking `acompress`, for scripts (not from inside a running event loop)::

    result = compress(open("prompt.txt").read(), rate=0.4)
    print(result.text, result.ratio)
    """
    return asyncio.run(acompress(prompt, service=service, compressor=compressor, **options))
