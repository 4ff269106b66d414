"""Question-aware compression of JSON: its members are ranked by relevance to the question, as passages
are, and the most relevant are kept first.

The conditional self-information that ranks words says little here: a key the question repeats is
*less* surprising after the question, so it would go first. Members are ranked with the passage ranker
(BM25 + MiniLM in the default compressor) and each member's units get a bonus that falls with its rank,
from RELEVANCE_NATS (the most relevant) to 0 (the least), on top of their self-information.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from ..coarse import PassageRanker
from ..units import Unit

RELEVANCE_NATS = 12.0  # larger than the spread of self-information, so rank decides
MAX_MEMBERS = 400  # members ranked per JSON value; the later ones get no bonus


def member_texts(text: str, units: Sequence[Unit]) -> dict[int, str]:
    """The text of each JSON member (a group of a JSON value's units), from its first unit to its last."""
    spans: dict[int, tuple[int, int]] = {}
    for unit in units:
        if unit.block is not None and unit.group is not None:
            start, end = spans.get(unit.group, (unit.start, unit.end))
            spans[unit.group] = (min(start, unit.start), max(end, unit.end))
    return {group: text[start:end].strip(" \t\n\r,") for group, (start, end) in spans.items()}


async def rank_json_members(
    ranker: PassageRanker, question: str, segments: Sequence[tuple[str, list[Unit]]]
) -> None:
    """Add the relevance bonus to the units of every JSON member of `segments` (text, units)."""
    for text, units in segments:
        texts = member_texts(text, units)
        if len(texts) < 2:
            continue
        groups = list(texts)[:MAX_MEMBERS]
        relevance = await asyncio.to_thread(ranker.rank, question, [texts[g] for g in groups])
        order = sorted(range(len(groups)), key=lambda i: -relevance[i])
        bonus = {groups[i]: RELEVANCE_NATS * (1 - rank / (len(groups) - 1)) for rank, i in enumerate(order)}
        for unit in units:
            owner = unit.group if unit.group in bonus else unit.parent
            if owner in bonus:
                unit.score += bonus[owner]
