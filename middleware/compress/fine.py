"""Fine compression: inside the kept passages, keep the most informative units up to a token budget.

Every token was scored once, conditioned on the original text before it (one forward per token);
LLMLingua instead rescores each segment conditioned on what it kept of the previous ones. The one-pass
scheme is several times cheaper and measures as good here (`bench/results/compress.md`). Selection is
per pool: units that must stay are paid for first, then the others by score (nats per token, highest
first) until the budget is spent. Tied units (a group, kept or dropped as one; a unit that needs its
parent group) are chosen together: keeping a nested JSON member pays for the members it sits in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .units import Unit


@dataclass
class _Choice:
    """Units kept or dropped as one: a unit alone, or a group (a JSON member, a pair of delimiters)."""

    pool: int
    units: list[int]
    tokens: int
    score: float
    parent: int | None = None  # the choice that must be kept with this one
    children: list[int] = field(default_factory=list)


def _choices(pool: Sequence[Sequence[Unit]]) -> list[_Choice]:
    choices: list[_Choice] = []
    for s, units in enumerate(pool):
        first = len(choices)  # this unit list's choices start here
        by_group: dict[int, int] = {}
        needs: list[tuple[int, int]] = []  # (choice, parent group)
        for i, unit in enumerate(units):
            if unit.always:
                continue
            if unit.group is not None and unit.group in by_group:
                choice = choices[by_group[unit.group]]
                choice.units.append(i)
                continue
            choices.append(_Choice(s, [i], 0, 0.0))
            if unit.group is not None:
                by_group[unit.group] = len(choices) - 1
            if unit.parent is not None:
                needs.append((len(choices) - 1, unit.parent))
        for index, group in needs:
            parent = by_group.get(group)
            if parent is not None and parent != index:
                choices[index].parent = parent
                choices[parent].children.append(index)
        for choice in choices[first:]:
            if len(choice.units) == 1:
                unit = units[choice.units[0]]
                choice.tokens, choice.score = unit.tokens, unit.score if unit.tokens else 0.0
                continue
            tokens = sum(units[i].tokens for i in choice.units)
            choice.tokens = tokens
            # a group is worth the mean surprise of its tokens
            choice.score = (
                sum(units[i].score * units[i].tokens for i in choice.units) / tokens if tokens else 0.0
            )
    return choices


def _ancestors(choices: list[_Choice], index: int, kept: list[bool]) -> list[int]:
    chain = [index]
    parent = choices[index].parent
    while parent is not None and not kept[parent]:
        chain.append(parent)
        parent = choices[parent].parent
    return chain


def _descendants(choices: list[_Choice], index: int, kept: list[bool]) -> list[int]:
    found, stack = [], [index]
    while stack:
        current = stack.pop()
        found.append(current)
        stack += [c for c in choices[current].children if kept[c]]
    return found


def select(pool: Sequence[Sequence[Unit]], budget: int) -> list[list[bool]]:
    """Kept masks, one per unit list of `pool`, keeping about `budget` tokens in all."""
    masks = [[u.always for u in units] for units in pool]
    spent = sum(u.tokens for units in pool for u in units if u.always)
    choices = _choices(pool)
    kept = [False] * len(choices)
    order = np.argsort([-c.score for c in choices], kind="stable")
    for index in order:
        choice = choices[index]
        if spent >= budget:
            break
        if kept[index] or choice.tokens <= 0:
            continue
        chain = _ancestors(choices, int(index), kept)  # keeping a member keeps what it sits in
        tokens = sum(choices[c].tokens for c in chain)
        # take a unit that overshoots only if that lands closer to the budget than stopping here
        if spent + tokens > budget and (spent + tokens - budget) > (budget - spent):
            continue
        for c in chain:
            kept[c] = True
        spent += tokens
    # zero-token choices (punctuation merged into a neighbour's token) follow the unit before them
    for index, choice in enumerate(choices):
        if choice.tokens == 0:
            first = choice.units[0]
            kept[index] = first > 0 and masks[choice.pool][first - 1]
            if choice.parent is not None and not kept[choice.parent]:
                kept[index] = False
        for i in choice.units:
            masks[choice.pool][i] = kept[index]
    return masks


def adjust(pool: Sequence[Sequence[Unit]], masks: list[list[bool]], delta: int) -> int:
    """Move the kept set by about `delta` tokens (positive: keep more, best dropped units first;
    negative: drop more, worst kept units first). Returns the token change made."""
    if delta == 0:
        return 0
    adding = delta > 0
    choices = _choices(pool)
    kept = [masks[c.pool][c.units[0]] for c in choices]
    candidates = [i for i, c in enumerate(choices) if c.tokens > 0 and kept[i] != adding]
    candidates.sort(key=lambda i: -choices[i].score if adding else choices[i].score)
    moved = 0
    for index in candidates:
        if abs(moved) >= abs(delta):
            break
        if kept[index] == adding:
            continue  # taken along with another one
        # keeping a member keeps its parents; dropping one drops what it holds
        chain = _ancestors(choices, index, kept) if adding else _descendants(choices, index, kept)
        for c in chain:
            kept[c] = adding
            for i in choices[c].units:
                masks[choices[c].pool][i] = adding
            moved += choices[c].tokens if adding else -choices[c].tokens
    return moved
