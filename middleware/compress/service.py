"""The one way into compression. The proxy stage, `POST /v1/compress`, the SDK (`Middleware.compress` and
`middleware.compress.compress`), `promptfold compress` and batch rewrite all hold a `CompressionService`
and call `compress(options, text=... | messages=...)`; they differ only in where their options and text
come from.

    service = CompressionService(backend)                 # scores with the backend's weights or SmolLM2
    result = await service.compress(CompressOptions(rate=0.4), text=long_text)

Scorers are made on first use and kept: "local" is a causal LM in this process (the embedded engine's own
model when the backend is the embedded engine, else `model`, the packaged SmolLM2 by default, on
`device`), "backend" asks the serving backend for prompt logprobs. Tokens are counted with the serving
model's tokenizer when it is at hand (`middleware.tokens`), so budgets are in the tokens the backend bills.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, Literal

from backend import Backend

from ..tokens import TokenCounter, token_counter
from .coarse import PassageRanker
from .compressor import Compressor
from .options import CompressInputError, CompressOptions
from .result import CompressionResult
from .scorer import Scorer

ScorerKind = Literal["local", "backend"]


class CompressionService:
    def __init__(
        self,
        backend: Backend | None = None,
        *,
        model: str | None = None,
        device: str = "cpu",
        count_tokens: TokenCounter | None = None,
        ranker: PassageRanker | None = None,
    ) -> None:
        self.backend = backend
        self.model = model  # the local scorer's model when the backend's own weights are not in-process
        self.device = device
        self.ranker = ranker  # question-aware passage ranking; None: the Compressor's default (hybrid)
        self._count_tokens = count_tokens
        self._compressors: dict[ScorerKind, Compressor] = {}
        self._lock = asyncio.Lock()

    @classmethod
    def around(cls, compressor: Compressor) -> CompressionService:
        """A service whose local scorer is an existing Compressor's (tests, benchmarks, the SDK call)."""
        service = cls()
        service._compressors["local"] = compressor
        return service

    async def compress(
        self,
        options: CompressOptions,
        *,
        text: str | None = None,
        messages: Sequence[dict[str, Any]] | None = None,
    ) -> CompressionResult:
        """Compress chat `messages` (long context only, see `messages.py`) or a `text`."""
        compressor = await self.compressor(options.scorer or "local")
        if messages is not None:
            return await compressor.compress_messages(list(messages), options)
        if text is None or not text.strip():
            raise CompressInputError("there is nothing to compress: the prompt is empty", param="prompt")
        return await compressor.compress_text(text, options)

    async def compressor(self, kind: ScorerKind = "local") -> Compressor:
        """The Compressor for a scorer kind, made once (loading a model the first time)."""
        async with self._lock:
            if kind not in self._compressors:
                scorer = await self._scorer(kind)
                count = self._count_tokens or self._counter(scorer)
                self._compressors[kind] = Compressor(scorer, ranker=self.ranker, count_tokens=count)
            return self._compressors[kind]

    async def _scorer(self, kind: ScorerKind) -> Scorer:
        from .scorer import BackendScorer, LocalScorer

        if kind == "backend":
            if self.backend is None:
                raise CompressInputError("scorer 'backend' needs a serving backend", param="scorer")
            return BackendScorer(self.backend)
        weights = await self.backend.model_weights() if self.backend is not None else None
        if self.model is None and weights is not None and weights.loaded is not None:
            return LocalScorer(loaded=weights.loaded)  # the embedded engine's own model, shared
        return await asyncio.to_thread(LocalScorer, self.model, device=self.device)

    def _counter(self, scorer: Scorer) -> TokenCounter:
        if self.backend is not None and self.backend.tokenizer() is not None:
            return token_counter(self.backend)
        return TokenCounter(scorer.name, scorer.count_tokens)  # no serving tokenizer: the scorer's counts
