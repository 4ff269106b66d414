"""BM25 over a list of passages (bm25s), with English stop words removed and Snowball stemming."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class BM25Params:
    """Okapi BM25 constants, chosen on nq_retrieval dev (bench/retrieval.py --tune, k1 in {0.6, 0.9, 1.2,
    1.5} x b in {0.4, 0.6, 0.75}): k1=1.2, b=0.6 found the gold passage in the top 5 for 0.925 of the
    questions, Anserini's passage defaults (0.9, 0.4) for 0.910."""

    k1: float = 1.2
    b: float = 0.6


class LexicalIndex:
    """BM25 scores of a fixed list of passages; `search` gives (position, score) pairs, best first."""

    def __init__(self, texts: Sequence[str], params: BM25Params | None = None) -> None:
        import bm25s

        params = params or BM25Params()
        self.size = len(texts)
        self._retriever = bm25s.BM25(k1=params.k1, b=params.b)
        if self.size:
            self._retriever.index(_tokenize(list(texts)), show_progress=False)

    @property
    def nbytes(self) -> int:
        """Memory held by the BM25 score matrix (sparse arrays), in bytes."""
        arrays = self._retriever.scores.values() if self.size else []
        return int(sum(getattr(a, "nbytes", 0) for a in arrays))

    def scores(self, query: str) -> np.ndarray:
        """The BM25 score of every passage for `query` (zeros when no query term is in the index)."""
        if not self.size:
            return np.zeros(0, dtype=np.float32)
        [terms] = _tokenize([query])
        known = [t for t in terms if t in self._retriever.vocab_dict]
        if not known:
            return np.zeros(self.size, dtype=np.float32)
        return np.asarray(self._retriever.get_scores(known), dtype=np.float32)

    def search(self, query: str, k: int) -> list[tuple[int, float]]:
        """At most `k` passages with a positive score, best first."""
        scores = self.scores(query)
        if not len(scores) or k <= 0:
            return []
        k = min(k, len(scores))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(int(i), float(scores[i])) for i in top if scores[i] > 0]


def _tokenize(texts: list[str]) -> list[list[str]]:
    import bm25s

    tokens: Any = bm25s.tokenize(
        texts, stopwords="en", stemmer=_stemmer(), return_ids=False, show_progress=False
    )
    return [list(t) for t in tokens]


@functools.cache
def _stemmer() -> Any:
    import Stemmer

    return Stemmer.Stemmer("english")
