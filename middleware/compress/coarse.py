"""Coarse compression: rank whole passages (or demonstrations) and keep the best until the budget.

Rankers follow one structural protocol, so any ranker with `rank(question, passages)` plugs in. The
Compressor's default is retrieval's hybrid BM25 + MiniLM ranker; two more come with this package:
- `EmbeddingRanker`: cosine between MiniLM embeddings of the question and each passage (cheap);
- `PerplexityRanker`: how likely the question is after the passage, as LongLLMLingua ranks them
  (one forward over every passage with the scoring model).
Without a question, passages are ranked by their own perplexity (mean self-information), as LLMLingua
ranks demonstrations: the surprising ones carry more.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class PassageRanker(Protocol):
    def rank(self, question: str, passages: Sequence[str]) -> list[float]:  # higher = more relevant
        ...


class EmbeddingRanker:
    """Cosine similarity of sentence embeddings (`middleware.embeddings`, MiniLM by default)."""

    name = "embedding"

    def __init__(self, model: str | None = None) -> None:
        self.model = model

    def rank(self, question: str, passages: Sequence[str]) -> list[float]:
        from ..embeddings import shared_embedder

        if not passages:
            return []
        vectors = shared_embedder(self.model).embed([question, *passages])
        return [float(x) for x in vectors[1:] @ vectors[0]]


class PerplexityRanker:
    """Mean log-probability of the question's tokens after each passage (LongLLMLingua's coarse rank)."""

    name = "perplexity"

    def __init__(self, scorer: object) -> None:
        self.scorer = scorer  # a LocalScorer (needs `score_sync`)

    def rank(self, question: str, passages: Sequence[str]) -> list[float]:
        from .scorer import ScoreRequest

        prompt = "\n" + question.strip()
        requests = [ScoreRequest(prompt, prefix=p) for p in passages]
        scores = self.scorer.score_sync(requests)  # type: ignore[attr-defined]
        return [-float(np.mean(s.self_information)) if len(s) else 0.0 for s in scores]


@dataclass
class CoarseChoice:
    kept: list[int]  # passage positions kept, in the order they will be rendered
    dropped: list[int]
    relevance: list[float]  # per passage position, as ranked


def choose_passages(
    tokens: Sequence[int],
    relevance: Sequence[float],
    budget: int,
    *,
    factor: float,
    reorder: bool,
    required: Sequence[int] = (),
) -> CoarseChoice:
    """Keep passages, most relevant first, until their tokens reach `budget * factor` (at least one).

    `required` passages (holding code, JSON or other spans that must stay) are kept whatever their rank.
    `reorder` renders the kept ones by relevance; otherwise in their original order.
    """
    order = sorted(range(len(tokens)), key=lambda i: -relevance[i])
    kept: list[int] = list(required)
    total = sum(tokens[i] for i in kept)
    for index in order:
        if index in kept:
            continue
        if kept and total >= budget * factor:
            break
        kept.append(index)
        total += tokens[index]
    kept.sort(key=lambda i: -relevance[i])
    dropped = [i for i in range(len(tokens)) if i not in set(kept)]
    return CoarseChoice(kept if reorder else sorted(kept), dropped, list(relevance))


def dynamic_budgets(tokens: Sequence[int], budget: int, spread: float) -> list[int]:
    """Split `budget` over passages listed most relevant first: passage i gets a share proportional to
    its size times a weight falling linearly from 1 + spread/2 to 1 - spread/2 (LongLLMLingua's dynamic
    ratios), never more than its own size; what a full passage cannot take goes to the others."""
    count = len(tokens)
    if count == 0:
        return []
    weights = [1.0 + spread * (0.5 - (i / (count - 1) if count > 1 else 0.0)) for i in range(count)]
    budgets = [0.0] * count
    remaining = float(budget)
    open_ = [i for i in range(count) if tokens[i] > 0]
    while open_ and remaining > 0.5:
        mass = sum(weights[i] * tokens[i] for i in open_)
        capped = []
        for i in open_:
            share = remaining * weights[i] * tokens[i] / mass
            budgets[i] += share
        remaining = 0.0
        for i in open_:
            if budgets[i] > tokens[i]:
                remaining += budgets[i] - tokens[i]
                budgets[i] = float(tokens[i])
                capped.append(i)
        open_ = [i for i in open_ if i not in capped]
    return [round(b) for b in budgets]
