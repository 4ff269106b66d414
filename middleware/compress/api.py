"""One-call SDK surface: `compress(text_or_messages, rate=...)` with the packaged SmolLM2 as scorer."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Sequence
from typing import Any

from .compressor import Compressor
from .options import CompressOptions
from .result import CompressionResult


@functools.lru_cache(maxsize=2)
def default_compressor(model: str | None = None, device: str = "cpu") -> Compressor:
    """A Compressor on the shared, cached LocalScorer for `model` (default SmolLM2)."""
    from .scorer import LocalScorer

    return Compressor(LocalScorer(model, device=device))


async def acompress(
    prompt: str | Sequence[dict[str, Any]], *, compressor: Compressor | None = None, **options: Any
) -> CompressionResult:
    """Compress a text or chat messages; `options` are CompressOptions fields (rate, question, ...)."""
    compressor = compressor or default_compressor()
    parsed = CompressOptions(**options)
    if isinstance(prompt, str):
        return await compressor.compress_text(prompt, parsed)
    return await compressor.compress_messages(list(prompt), parsed)


def compress(
    prompt: str | Sequence[dict[str, Any]], *, compressor: Compressor | None = None, **options: Any
) -> CompressionResult:
    """Blocking `acompress`, for scripts (not from inside a running event loop)::

    result = compress(open("prompt.txt").read(), rate=0.4)
    print(result.text, result.ratio)
    """
    return asyncio.run(acompress(prompt, compressor=compressor, **options))
