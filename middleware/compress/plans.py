"""The two compression plans: which passages stay, in what order, and how many tokens each pool may keep.

Both take a `Prepared` compression (segments cut into units and counted, the context budget known) and
return a `Plan`. Fine selection and rendering are shared (`compressor.py`).

- Plain (LLMLingua): every token is scored for its self-information; passages are ranked by their mean
  (the surprising ones carry more), dropped whole until about `coarse_factor` x the budget is left, and
  the rest is pruned as one pool.
- Question-aware (LongLLMLingua): passages are ranked by relevance to the question, the most relevant
  kept first; each kept passage is scored with the question in front (conditional, or contrastive) and
  gets a budget that falls with its rank (dynamic ratios).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from .coarse import PassageRanker, choose_passages, dynamic_budgets
from .document import Document
from .options import CompressOptions
from .scorer import Scorer
from .scoring import score_units
from .structure.relevance import rank_json_members
from .units import holds_required
from .work import Work

Offload = Callable[..., Awaitable[Any]]  # runs a blocking function off the event loop: f(fn, *args)


@dataclass
class Prepared:
    """A compression after segmentation and counting, before any model call."""

    document: Document
    options: CompressOptions
    question: str
    works: list[Work]  # every segment, in document order
    passages: list[Work]  # context passages (the budget decides)
    regions: list[Work]  # regions with their own rate below 1
    original_tokens: int
    target: int
    context_budget: int
    finer: bool  # the main passage was cut into lines or sentences (their order must stay)
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def lap(self, phase: str, started: float) -> float:
        """Record the seconds since `started` under `phase`; return the new start."""
        now = time.perf_counter()
        self.timings[phase] = now - started
        return now


@dataclass
class Plan:
    """What the plan decided: kept passages in output order, dropped ones, and the token pools."""

    kept_order: list[int]  # positions in `Prepared.passages`, in the order they will be rendered
    dropped: list[Work]
    pools: list[tuple[list[Work], int]]  # works pruned together, and the tokens they may keep

    def kept(self, prepared: Prepared) -> list[Work]:
        return [prepared.passages[i] for i in self.kept_order]


async def plain_plan(prepared: Prepared, scorer: Scorer) -> Plan:
    clock = time.perf_counter()
    await score_units(scorer, prepared.works, prepared.passages + prepared.regions, None, "self")
    relevance = [_mean_score(w) for w in prepared.passages]
    clock = prepared.lap("score", clock)
    plan = _coarse(prepared, relevance, reorder=bool(prepared.options.reorder), factor=1.5)
    if len(prepared.passages) >= 2 and prepared.options.coarse:
        prepared.lap("coarse", clock)
    kept = plan.kept(prepared)
    plan.pools = [(kept, prepared.context_budget)] if kept else []
    plan.pools += _region_pools(prepared)
    return plan


async def question_aware_plan(
    prepared: Prepared, scorer: Scorer, ranker: PassageRanker, offload: Offload = asyncio.to_thread
) -> Plan:
    clock = time.perf_counter()
    passages = prepared.passages
    relevance = [0.0] * len(passages)
    if len(passages) >= 2:
        relevance = await offload(ranker.rank, prepared.question, [w.segment.text for w in passages])
        clock = prepared.lap("rank", clock)
    reorder = prepared.options.reorder is not False
    plan = _coarse(prepared, relevance, reorder=reorder, factor=1.0)
    if len(passages) >= 2 and prepared.options.coarse:
        clock = prepared.lap("coarse", clock)
    kept = plan.kept(prepared)
    how = prepared.options.scores or "conditional"
    await score_units(scorer, prepared.works, kept + prepared.regions, prepared.question, how)
    await rank_json_members(ranker, prepared.question, [(w.segment.text, w.units) for w in kept])
    prepared.lap("score", clock)
    by_rank = sorted(kept, key=lambda w: -relevance[passages.index(w)])
    shares = dynamic_budgets(
        [w.tokens for w in by_rank], prepared.context_budget, prepared.options.dynamic_ratio
    )
    plan.pools = [([w], share) for w, share in zip(by_rank, shares, strict=True)]
    plan.pools += _region_pools(prepared)
    return plan


def _coarse(prepared: Prepared, relevance: list[float], *, reorder: bool, factor: float) -> Plan:
    """Drop whole passages by relevance (when coarse is on and there are several), and decide the order.
    Chat messages and finer pieces keep their order: moving them would move text between messages."""
    passages = prepared.passages
    options = prepared.options
    reorder = reorder and prepared.document.messages is None and not prepared.finer
    kept_order = list(range(len(passages)))
    if not (options.coarse and len(passages) >= 2):
        if reorder:
            kept_order.sort(key=lambda i: -relevance[i])
        return Plan(kept_order, [], [])
    choice = choose_passages(
        [w.tokens for w in passages],
        relevance,
        prepared.context_budget,
        factor=options.coarse_factor or factor,
        reorder=reorder,
        required=[i for i, w in enumerate(passages) if holds_required(w.units)],
    )
    return Plan(choice.kept, [passages[i] for i in choice.dropped], [])


def _region_pools(prepared: Prepared) -> list[tuple[list[Work], int]]:
    """`<compress rate=R>` regions: each prunes alone to its own rate."""
    return [([w], round(w.tokens * (w.segment.rate or 1.0))) for w in prepared.regions]


def _mean_score(work: Work) -> float:
    tokens = sum(u.tokens for u in work.units)
    return sum(u.score * u.tokens for u in work.units) / tokens if tokens else 0.0
