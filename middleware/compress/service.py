"""The one way into compression. The proxy stage, `POST /v1/compress`, the SDK (`Middleware.compress` and
`middleware.compress.compress`), `promptfold compress` and batch rewrite all hold a `CompressionService`
and call `compress(options, text=... | messages=...)`; they differ only in where their options and text
come from.

    service = CompressionService(backend)                 # scores with the backend's weights or SmolLM2
    result = await service.compress(CompressOptions(rate=0.4), text=long_text)

What it adds around a `Compressor`:
- scorers made on first use and kept: "local" is a causal LM in this process (the embedded engine's own
  model, else `model`, the packaged SmolLM2 by default, on `device`), "backend" the serving backend's
  prompt logprobs, "classifier" the small encoder distilled from SmolLM2 (`classifier/`; when it cannot
  load, the local scorer stands in and every result says so in a note); each is shared by concurrent
  compressions (`SharedScorer`: their rows go to the model in the same forwards); a request that names
  no scorer gets `default_scorer` ("auto": the classifier on a CPU once the benchmark made it the
  default, `classifier.DEFAULT_ON_CPU`, else local);
- the CPU-heavy steps on a bounded pool of `workers` threads, off the caller's event loop;
- the passage ranker's embedder on `device` too (question-aware mode ranks many passages);
- results cached by content (`CompressionCache`), chat messages one by one in plain mode
  (`conversation.py`), so repeated prompts and earlier turns cost nothing and stay byte-identical;
- tokens counted with the serving model's tokenizer when it is at hand (`middleware.tokens`).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

from backend import Backend

from ..tokens import TokenCounter, token_counter
from .batching import SharedScorer
from .cache import CompressionCache, cache_key
from .coarse import PassageRanker
from .compressor import Compressor
from .conversation import check_contents, combine, compress_one_by_one, compressible
from .options import CompressInputError, CompressOptions
from .result import CompressionResult
from .scorer import Scorer

ScorerKind = Literal["local", "backend", "classifier"]
log = logging.getLogger(__name__)


class CompressionService:
    def __init__(
        self,
        backend: Backend | None = None,
        *,
        model: str | None = None,
        device: str = "cpu",
        count_tokens: TokenCounter | None = None,
        ranker: PassageRanker | None = None,
        workers: int = 2,
        cache_chars: int = 64 * 2**20,
        default_scorer: ScorerKind | Literal["auto"] = "auto",
    ) -> None:
        self.backend = backend
        self.model = model  # the local scorer's model when the backend's own weights are not in-process
        self.device = device
        self.ranker = ranker  # question-aware passage ranking; None: hybrid BM25 + MiniLM on `device`
        self.cache = CompressionCache(cache_chars)
        self._count_tokens = count_tokens
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="promptfold-compress")
        self._compressors: dict[ScorerKind, Compressor] = {}
        self._lock = asyncio.Lock()
        self.default_scorer = default_scorer
        self._stand_ins: dict[ScorerKind, str] = {}  # kind -> why another scorer stands in for it

    @classmethod
    def around(cls, compressor: Compressor) -> CompressionService:
        """A service whose local scorer is an existing Compressor's (tests, benchmarks, the SDK call)."""
        service = cls(default_scorer="local")
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
        kind = self.scorer_kind(options.scorer)
        compressor = await self.compressor(kind)
        result = await self._compress(compressor, kind, options, text, messages)
        result.scorer = kind
        if kind in self._stand_ins and self._stand_ins[kind] not in result.notes:
            result.notes.append(self._stand_ins[kind])
        return result

    def scorer_kind(self, asked: ScorerKind | None) -> ScorerKind:
        """The scorer a request gets: the one it names, else the service's default."""
        if asked is not None:
            return asked
        if self.default_scorer != "auto":
            return self.default_scorer
        from .classifier import DEFAULT_ON_CPU

        return "classifier" if DEFAULT_ON_CPU and self.device == "cpu" else "local"

    async def _compress(
        self,
        compressor: Compressor,
        kind: ScorerKind,
        options: CompressOptions,
        text: str | None,
        messages: Sequence[dict[str, Any]] | None,
    ) -> CompressionResult:
        context = (kind, compressor.count_tokens.name)
        if messages is not None:
            chat = list(messages)
            if compress_one_by_one(options, chat):
                return await self._one_by_one(compressor, chat, options, context)
            key = cache_key("messages", chat, options, *context)
            return await self._cached(key, lambda: compressor.compress_messages(chat, options))
        if text is None or not text.strip():
            raise CompressInputError("there is nothing to compress: the prompt is empty", param="prompt")
        key = cache_key("text", text, options, *context)
        return await self._cached(key, lambda: compressor.compress_text(text, options))

    async def compressor(self, kind: ScorerKind | None = None) -> Compressor:
        """The Compressor for a scorer kind (default: the service's), made once (loading a model the first
        time)."""
        kind = self.scorer_kind(kind)
        async with self._lock:
            if kind not in self._compressors:
                scorer = SharedScorer(await self._scorer(kind))
                count = self._count_tokens or self._counter(scorer)
                ranker = self.ranker or await self.offload(_hybrid_ranker, self.device)
                self._compressors[kind] = Compressor(
                    scorer, ranker=ranker, count_tokens=count, offload=self.offload
                )
            return self._compressors[kind]

    async def offload(self, function: Callable[..., Any], *args: Any) -> Any:
        """Run a blocking step on the service's worker pool."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(function, *args))

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    # --- helpers ----------------------------------------------------------------------------------

    async def _cached(
        self, key: str, compress: Callable[[], Awaitable[CompressionResult]]
    ) -> CompressionResult:
        found = self.cache.get(key)
        if found is not None:
            found.cache = [{**entry, "cache_hit": True} for entry in found.cache] or [{"cache_hit": True}]
            return found
        result = await compress()
        result.cache = [{"cache_hit": False}]
        self.cache.put(key, result)
        return result

    async def _one_by_one(
        self,
        compressor: Compressor,
        messages: list[dict[str, Any]],
        options: CompressOptions,
        context: tuple[str, str],
    ) -> CompressionResult:
        contents = check_contents(messages)
        # whether a message is long enough to compress needs no exact count of a long one (its result
        # counts it); the messages that stay as sent are counted exactly, for the totals
        sizes = await self.offload(compressor.count_tokens.at_least, contents, options.min_message_tokens)
        indices = [i for i, m in enumerate(messages) if compressible(m, sizes[i], options)]
        chosen = set(indices)
        kept = [i for i in range(len(messages)) if i not in chosen]
        if kept:
            exact = await self.offload(compressor.count_tokens.many, [contents[i] for i in kept])
            for i, n in zip(kept, exact, strict=True):
                sizes[i] = n

        async def one(index: int) -> CompressionResult:
            message = messages[index]
            key = cache_key("message", [message.get("role"), contents[index]], options, *context)
            return await self._cached(key, lambda: compressor.compress_messages([message], options))

        done = await asyncio.gather(*(one(i) for i in indices))
        results = dict(zip(indices, done, strict=True))
        hits = {i: bool(r.cache and r.cache[0]["cache_hit"]) for i, r in results.items()}
        return combine(messages, sizes, results, hits)

    async def _scorer(self, kind: ScorerKind) -> Scorer:
        from .classifier import ClassifierUnavailable, classifier_dir, shared_classifier
        from .scorer import BackendScorer, LocalScorer

        if kind == "classifier":
            try:
                return await self.offload(shared_classifier, str(classifier_dir()), self.device)
            except ClassifierUnavailable as error:
                note = (
                    f"the classifier scorer is unavailable, so the local scorer (SmolLM2) stood in: {error}"
                )
                log.warning("%s", note)
                self._stand_ins[kind] = note
        if kind == "backend":
            if self.backend is None:
                raise CompressInputError("scorer 'backend' needs a serving backend", param="scorer")
            return BackendScorer(self.backend)
        weights = await self.backend.model_weights() if self.backend is not None else None
        if self.model is None and weights is not None and weights.loaded is not None:
            return LocalScorer(loaded=weights.loaded)  # the embedded engine's own model, shared
        return await self.offload(functools.partial(LocalScorer, self.model, device=self.device))

    def _counter(self, scorer: Scorer) -> TokenCounter:
        if self.backend is not None and self.backend.tokenizer() is not None:
            return token_counter(self.backend)
        if scorer.name == "classifier":  # budgets in SmolLM2 tokens, as with the scorer it imitates
            return token_counter(None)
        return TokenCounter(scorer.name, scorer.count_tokens)  # no serving tokenizer: the scorer's counts


def _hybrid_ranker(device: str) -> PassageRanker:
    """BM25 + MiniLM cosine, fused (retrieval's ranker), with MiniLM on `device`: on the retrieval set it
    beats cosine alone (recall@5 0.991 vs 0.988), and on a GPU it ranks hundreds of passages in ms."""
    from ..embeddings import shared_embedder
    from ..retrieval.ranker import HybridRanker

    return HybridRanker(shared_embedder(None, device))
