"""Units: the pieces pruning keeps or drops whole. A word with its leading space, a run of punctuation,
a line break, or a whole protected span (a number, an equation, a URL, an HTML tag, a code block). Tokens
are mapped to the unit their first character falls in, so a unit's cost is its token count and its score
the mean self-information of its tokens.

Units may be tied: units of one `group` are kept or dropped together (a JSON member's key and closing
bracket, two paired brackets or tags), and a unit with a `parent` group is kept only with that group (a
word inside a JSON string, a nested member). A JSON value's units carry their `block`, which renders
them as valid JSON. No unit boundary falls inside a grapheme cluster (`structure/graphemes.py`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import regex

from .spans import Span, protected_spans
from .structure.graphemes import (
    cluster_starts,
    has_ideographs,
    needs_space,
    simple_clusters,
    split_ideographic,
)
from .structure.jsonblock import JsonBlock, parse, unit_specs

ATOMIC_KINDS = frozenset({"number", "url", "email", "id", "equation"})
# `regex`'s \w holds combining marks and joiners, so 'हिन्दी' or an NFD 'é' is one word (re's \w is not)
# One pass over plain text: a line break, else a word (or a run of punctuation) with its leading spaces,
# else any one character. The alternatives are tried in that order at each position.
_PLAIN = regex.compile(
    r"(?P<brk>[ \t]*\n\s*)|(?P<word>[ \t]*(?:\w+(?:['’]\w+)*|[^\w\s]+)|[ \t]+(?=\n|$))|.", regex.S
)
_PAIRED = frozenset({"pair", "tag"})
# kept units that do not make their passage a must-keep one (a line break, a demonstration's answer)
_OPTIONAL_IN_PASSAGE = frozenset({"break", "answer"})


@dataclass(slots=True)
class Unit:
    start: int  # character span in its segment's text, leading spaces included
    end: int
    kind: str  # "word", "break", or a protected span kind ("number", "url", "json", "code", ...)
    always: bool = False  # kept whatever the budget (breaks, code, answer lines, roles)
    tokens: int = 0
    score: float = 0.0
    group: int | None = None  # units of one group are kept or dropped together
    parent: int | None = None  # the group this unit needs kept
    block: JsonBlock | None = None  # the JSON value this unit belongs to


def split_units(text: str, *, keep_all: bool = False) -> list[Unit]:
    """`text` cut into units that cover it exactly, in order."""
    units: list[Unit] = []
    groups = [0]  # the next free group id
    pair_groups: dict[int, int] = {}
    at = 0
    for span in [*protected_spans(text), Span(len(text), len(text), "code")]:
        _plain_units(text, at, span.start, units)
        at = span.end
        if span.end <= span.start:
            continue
        if span.kind == "json":
            block = parse(text, span.start, span.end)
            if block is not None:
                specs = unit_specs(text, block, groups)
                units += [
                    Unit(s.start, s.end, s.kind, s.always, group=s.group, parent=s.parent, block=block)
                    for s in specs
                ]
                continue
        # the spaces before a protected span travel with it
        start = span.start
        if units and units[-1].kind == "word" and text[units[-1].start : units[-1].end].isspace():
            start = units.pop().start
        group = None
        if span.pair is not None:
            if span.pair not in pair_groups:
                pair_groups[span.pair] = groups[0]
                groups[0] += 1
            group = pair_groups[span.pair]
        units.append(Unit(start, span.end, span.kind, always=span.kept, group=group))
    units = _whole_clusters(text, units)
    if keep_all:
        for unit in units:
            unit.always = True
    return units


def _plain_units(text: str, start: int, end: int, out: list[Unit]) -> None:
    ideographic = has_ideographs(text, start, end)
    for match in _PLAIN.finditer(text, start, end):
        at, stop = match.span()
        if match.lastgroup == "brk":
            out.append(Unit(at, stop, "break", always=True))
        elif match.lastgroup == "word" and ideographic:
            for piece in split_ideographic(match.group()):  # Han and kana: one ideograph, one word
                out.append(Unit(at, at + len(piece), "word"))
                at += len(piece)
        else:  # a word, or anything else, one character at a time
            out.append(Unit(at, stop, "word"))


def _whole_clusters(text: str, units: list[Unit]) -> list[Unit]:
    """Units merged where a boundary falls inside a grapheme cluster (an emoji's joiner, a keycap)."""
    if simple_clusters(text):
        return units
    starts = cluster_starts(text)
    merged: list[Unit] = []
    for unit in units:
        previous = merged[-1] if merged else None
        if previous is None or unit.start in starts or unit.block is not None or previous.block is not None:
            merged.append(unit)
            continue
        previous.end = unit.end
        if previous.kind in ("word", "break") and unit.kind not in ("word", "break"):
            previous.kind = unit.kind
        previous.always = previous.always or unit.always
        previous.group = previous.group if previous.group is not None else unit.group
    return merged


def assign_tokens(
    units: list[Unit], starts: np.ndarray, scores: np.ndarray | None, *, counts: bool = True
) -> None:
    """Set each unit's token count and score from the tokens starting at `starts` (chars, sorted);
    `counts=False` sets the scores only (the counts came from the counting tokenizer)."""
    if not units:
        return
    bounds = np.asarray([u.start for u in units], dtype=np.int64)
    owner = np.clip(np.searchsorted(bounds, starts, side="right") - 1, 0, len(units) - 1)
    per_unit = np.bincount(owner, minlength=len(units))
    if scores is None:
        for index, unit in enumerate(units):
            unit.tokens = int(per_unit[index])
        return
    sums = np.bincount(owner, weights=scores, minlength=len(units))
    peaks = np.full(len(units), -np.inf)
    np.maximum.at(peaks, owner, scores)
    for index, unit in enumerate(units):
        if counts:
            unit.tokens = int(per_unit[index])
        if per_unit[index]:
            # a word is worth its mean surprise per token; a number, URL or ID its most surprising
            # token, since its later digits are predictable but cutting them would corrupt it
            atomic = unit.kind in ATOMIC_KINDS
            unit.score = float(peaks[index] if atomic else sums[index] / per_unit[index])


def holds_required(units: list[Unit]) -> bool:
    """Whether a passage holds a unit that must stay, so the passage must (code, a JSON value, a role)."""
    return any(u.always and u.kind not in _OPTIONAL_IN_PASSAGE for u in units)


def consistent(units: list[Unit], kept: list[bool]) -> list[bool]:
    """`kept` made whole: a group is kept only if all its units are, a unit needing a parent group only
    with it, and a pair of delimiters only around something kept."""
    kept = list(kept)
    members: dict[int, list[int]] = {}
    for index, unit in enumerate(units):
        if unit.group is not None:
            members.setdefault(unit.group, []).append(index)
    for indices in members.values():
        if not all(kept[i] for i in indices) and not all(units[i].always for i in indices):
            for i in indices:
                kept[i] = units[i].always
    alive = {g for g, indices in members.items() if all(kept[i] for i in indices)}
    for index, unit in enumerate(units):
        if unit.parent is not None and unit.parent in members and unit.parent not in alive:
            kept[index] = unit.always
    # a kept pair around nothing kept is dropped: "()" or "<b></b>" say nothing (inner pairs first)
    pairs = [ix for ix in members.values() if units[ix[0]].kind in _PAIRED and len(ix) > 1 and kept[ix[0]]]
    for indices in sorted(pairs, key=lambda ix: ix[-1] - ix[0]):
        first, last = indices[0], indices[-1]
        if not any(kept[i] and units[i].kind != "break" for i in range(first + 1, last)):
            for i in indices:
                kept[i] = units[i].always
    return kept


def render(text: str, units: list[Unit], kept: list[bool]) -> str:
    """The kept units joined; a line break with nothing kept since the previous one is dropped, and the
    first kept word of a line loses its leading spaces. A JSON value is written by its block (valid
    JSON); a URL never runs into the text kept after it; no space is put between CJK characters."""
    kept = consistent(units, kept)
    pieces: list[str] = []
    line_has_text = False
    gap = False  # a unit was dropped since the last kept one
    last_kind = ""
    index = 0
    while index < len(units):
        unit = units[index]
        if unit.block is not None:
            block, first = unit.block, index
            while index < len(units) and units[index].block is block:
                index += 1
            states = {u.start: k for u, k in zip(units[first:index], kept[first:index], strict=True)}
            piece, keep = block.render(text, states), True
        else:
            piece, keep = text[unit.start : unit.end], kept[index]
            index += 1
        if not keep:
            gap = True
            continue
        if gap and pieces and _glues(pieces[-1], piece, last_kind, unit.kind):
            piece = " " + piece  # "6 highlighters/box" minus "/" must not become "highlightersbox"
        gap = False
        if unit.kind == "break":
            if not line_has_text and pieces:
                continue
            line_has_text = False
        else:
            if not line_has_text and (not pieces or unit.kind == "word"):
                piece = piece.lstrip(" \t") if pieces and pieces[-1].endswith("\n") else piece
            line_has_text = True
        pieces.append(piece)
        last_kind = unit.kind
    return "".join(pieces)


def _glues(before: str, after: str, before_kind: str, after_kind: str) -> bool:
    if needs_space(before, after):
        return True
    # a URL or e-mail followed (or preceded) by other kept text would read as a longer, wrong address
    linked = before_kind in ("url", "email") or after_kind in ("url", "email")
    return linked and not before[-1:].isspace() and not after[:1].isspace()
