"""Combining rankings and choosing passages: reciprocal rank fusion, MMR, and a token budget."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import TypeVar

import numpy as np

Key = TypeVar("Key", bound=Hashable)

# Chosen on nq_retrieval dev only (bench/retrieval.py --tune, k in {2, 5, 10, 20, 60} x dense weight in
# {1, 2, 3, 4, 6}): k=5 with a dense weight of 3 ties the best recall@5 there (0.994),
# because MiniLM alone is much stronger than BM25 on that set; BM25 still
# rescues questions whose answer hinges on an exact name or number.
RRF_K = 5
DENSE_WEIGHT = 3.0
LEXICAL_WEIGHT = 1.0


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[Key]], weights: Sequence[float] | None = None, k: float = RRF_K
) -> list[tuple[Key, float]]:
    """Fuse best-first rankings: score(x) = sum over rankings of weight / (k + rank of x), rank from 1.

    Returns (key, score) pairs, best first; ties keep the order of first appearance.
    """
    weights = weights or [1.0] * len(rankings)
    fused: dict[Key, float] = {}
    for ranking, weight in zip(rankings, weights, strict=True):
        for rank, key in enumerate(ranking, start=1):
            fused[key] = fused.get(key, 0.0) + weight / (k + rank)
    return sorted(fused.items(), key=lambda item: -item[1])


def maximal_marginal_relevance(
    candidates: np.ndarray, relevance: Sequence[float], lambda_: float, top_n: int
) -> list[int]:
    """Positions of `top_n` candidates (unit vectors, rows) chosen greedily by lambda * relevance - (1 - lambda) * max
    cosine similarity to the ones already chosen. `relevance` is divided by its maximum first so that it
    weighs like a cosine; lambda=1 keeps the relevance order, lower values trade it for diversity."""
    n = len(candidates)
    if n == 0 or top_n <= 0:
        return []
    rel = np.asarray(relevance, dtype=np.float64)
    top = rel.max()
    rel = rel / top if top > 0 else np.ones(n)
    similarity = candidates @ candidates.T
    chosen: list[int] = []
    closest = np.full(n, -np.inf)
    available = np.ones(n, dtype=bool)
    for _ in range(min(top_n, n)):
        redundancy = np.where(np.isfinite(closest), closest, 0.0)
        gain = lambda_ * rel - (1.0 - lambda_) * redundancy
        gain[~available] = -np.inf
        pick = int(np.argmax(gain))
        chosen.append(pick)
        available[pick] = False
        closest = np.maximum(closest, similarity[pick])
    return chosen


def select_under_budget(token_counts: Sequence[int], budget: int | None, limit: int) -> list[int]:
    """Positions (in the given best-first order) of at most `limit` items whose tokens sum to at most
    `budget`; an item that does not fit is skipped and smaller ones after it may still go in."""
    chosen: list[int] = []
    used = 0
    for position, tokens in enumerate(token_counts):
        if len(chosen) >= limit:
            break
        if budget is not None and used + tokens > budget:
            continue
        chosen.append(position)
        used += tokens
    return chosen
