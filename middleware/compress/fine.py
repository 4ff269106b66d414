"""Fine compression: inside the kept passages, keep the most informative units up to a token budget.

Every token was scored once, conditioned on the original text before it (one forward per token);
LLMLingua instead rescores each segment conditioned on what it kept of the previous ones. The one-pass
scheme is several times cheaper and measures as good here (`bench/results/compress.md`). Selection is
per pool: units that must stay are paid for first, then the others by score (nats per token, highest
first) until the budget is spent.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .units import Unit


def select(pool: Sequence[Sequence[Unit]], budget: int) -> list[list[bool]]:
    """Kept masks, one per unit list of `pool`, keeping about `budget` tokens in all."""
    masks = [[u.always for u in units] for units in pool]
    spent = sum(u.tokens for units in pool for u in units if u.always)
    candidates = [
        (unit.score, unit.tokens, s, i)
        for s, units in enumerate(pool)
        for i, unit in enumerate(units)
        if not unit.always and unit.tokens > 0
    ]
    if not candidates:
        return masks
    order = np.argsort([-c[0] for c in candidates], kind="stable")
    for index in order:
        _, tokens, s, i = candidates[index]
        if spent >= budget:
            break
        # take a unit that overshoots only if that lands closer to the budget than stopping here
        if spent + tokens > budget and (spent + tokens - budget) > (budget - spent):
            continue
        masks[s][i] = True
        spent += tokens
    # zero-token units (punctuation merged into a neighbour's token) follow the unit before them
    for units, mask in zip(pool, masks, strict=True):
        for i, unit in enumerate(units):
            if unit.tokens == 0 and not unit.always:
                mask[i] = i > 0 and mask[i - 1]
    return masks


def adjust(pool: Sequence[Sequence[Unit]], masks: list[list[bool]], delta: int) -> int:
    """Move the kept set by about `delta` tokens (positive: keep more, best dropped units first;
    negative: drop more, worst kept units first). Returns the token change made."""
    if delta == 0:
        return 0
    adding = delta > 0
    candidates = [
        (unit.score, unit.tokens, s, i)
        for s, units in enumerate(pool)
        for i, unit in enumerate(units)
        if not unit.always and unit.tokens > 0 and masks[s][i] != adding
    ]
    candidates.sort(key=lambda c: -c[0] if adding else c[0])
    moved = 0
    for _, tokens, s, i in candidates:
        if abs(moved) >= abs(delta):
            break
        masks[s][i] = adding
        moved += tokens if adding else -tokens
    return moved
