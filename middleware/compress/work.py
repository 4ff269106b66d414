"""A segment being compressed, and how the kept pieces are put back together into text."""

from __future__ import annotations

from dataclasses import dataclass, field

from .document import Segment
from .result import Piece
from .units import Unit


@dataclass(eq=False)
class Work:
    """A segment being compressed: its units, its kept mask, and the pool it is budgeted in."""

    segment: Segment
    units: list[Unit] = field(default_factory=list)
    mask: list[bool] = field(default_factory=list)
    tokens: int = 0
    counted: bool = False  # units hold their counting-tokenizer token counts (scores only come later)


def render_order(
    works: list[Work], passages: list[Work], kept_order: list[int], dropped: list[Work]
) -> list[int]:
    """Indices into `works` in output order: kept passages take the kept passage slots in `kept_order`."""
    slots = [i for i, w in enumerate(works) if w in passages and w not in dropped]
    slots_sorted = sorted(slots)
    ordered = [works.index(passages[k]) for k in kept_order if passages[k] not in dropped]
    mapping = dict(zip(slots_sorted, ordered, strict=True))
    return [mapping.get(i, i) for i, w in enumerate(works) if w not in dropped]


def separators(works: list[Work], order: list[int]) -> dict[int, str]:
    """The separator after each rendered segment: a slot keeps the separator of its original position,
    and one followed by dropped segments takes the widest separator of that run."""
    kept_positions = sorted(order)
    by_position: dict[int, str] = {}
    for n, position in enumerate(kept_positions):
        separator = works[position].segment.separator
        following = kept_positions[n + 1] if n + 1 < len(kept_positions) else len(works)
        if following > position + 1:  # segments were dropped after this one: keep the widest break
            dropped_run = [works[k].segment.separator for k in range(position, following)]
            separator = max(dropped_run, key=lambda sep: (sep.count("\n"), len(sep)))
        by_position[position] = separator
    return {index: by_position[position] for position, index in zip(kept_positions, order, strict=True)}


def join(pieces: list[str]) -> str:
    """Segments joined; a space goes between two that would otherwise glue two words together."""
    out: list[str] = []
    for piece in pieces:
        if out and out[-1] and piece and out[-1][-1].isalnum() and piece[0].isalnum():
            out.append(" ")
        out.append(piece)
    return "".join(out)


def pieces(works: list[Work], dropped: list[Work]) -> list[Piece]:
    """The original text as runs of kept and dropped characters, in order (adjacent runs merged)."""
    runs: list[tuple[bool, list[str]]] = []

    def add(text: str, kept: bool) -> None:
        if not text:
            return
        if runs and runs[-1][0] == kept:
            runs[-1][1].append(text)  # joined once at the end: no quadratic string building
        else:
            runs.append((kept, [text]))

    gone = set(map(id, dropped))
    for work in works:
        text = work.segment.text
        if id(work) in gone:
            add(text + work.segment.separator, False)
            continue
        at = 0
        for unit, keep in zip(work.units, work.mask, strict=True):
            add(text[at : unit.end], keep)
            at = unit.end
        add(text[at:], True)
        add(work.segment.separator, True)
    return [Piece("".join(parts), kept) for kept, parts in runs]
