"""Question-aware ranking of a handful of passages, with no persistent index: BM25 over just these
passages plus MiniLM cosine, fused by reciprocal rank. Used to keep the relevant documents of a prompt
and pluggable as the coarse ranker of the compression stage (it has exactly the `rank` it expects)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..embeddings import Embedder, shared_embedder
from .fusion import DENSE_WEIGHT, LEXICAL_WEIGHT, RRF_K, reciprocal_rank_fusion
from .lexical import LexicalIndex


class HybridRanker:
    """`rank(question, passages)` gives one score per passage, higher = more relevant.

    Scores are fused reciprocal-rank scores (sum of weight / (rrf_k + rank)); they order passages and
    are not probabilities. A passage's embedding is cached by its text, so ranking the same documents
    for another question costs only the question's embedding and BM25.
    """

    def __init__(
        self,
        embedder: Embedder | None = None,
        *,
        rrf_k: float = RRF_K,
        dense_weight: float = DENSE_WEIGHT,
        lexical_weight: float = LEXICAL_WEIGHT,
    ) -> None:
        self._embedder = embedder
        self.rrf_k = rrf_k
        self.dense_weight = dense_weight
        self.lexical_weight = lexical_weight

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = shared_embedder()
        return self._embedder

    def rank(self, question: str, passages: Sequence[str]) -> list[float]:  # higher = more relevant
        if not passages:
            return []
        if not question.strip():
            return [0.0] * len(passages)  # no question, no preference
        vectors = self.embedder.embed([question, *passages])
        cosine = vectors[1:] @ vectors[0]
        dense = [int(i) for i in np.argsort(-cosine, kind="stable")]
        lexical = [i for i, _ in LexicalIndex(passages).search(question, len(passages))]
        fused = dict(
            reciprocal_rank_fusion([dense, lexical], [self.dense_weight, self.lexical_weight], k=self.rrf_k)
        )
        return [float(fused.get(i, 0.0)) for i in range(len(passages))]
