"""Units: the pieces pruning keeps or drops whole. A word with its leading space, a run of punctuation,
a line break, or a whole protected span (a number, a URL, a JSON key, a code block). Tokens are mapped to
the unit their first character falls in, so a unit's cost is its token count and its score the mean
self-information of its tokens."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from .spans import Span, protected_spans

ATOMIC_KINDS = frozenset({"number", "url", "email", "id"})
_WORD = re.compile(r"[ \t]*(?:\w+(?:['’]\w+)*|[^\w\s]+)|[ \t]+(?=\n|$)")
_BREAK = re.compile(r"[ \t]*\n\s*")


@dataclass
class Unit:
    start: int  # character span in its segment's text, leading spaces included
    end: int
    kind: str  # "word", "break", or a protected span kind ("number", "url", "json", "code", ...)
    always: bool = False  # kept whatever the budget (breaks, code, JSON structure, roles)
    tokens: int = 0
    score: float = 0.0


def split_units(text: str, *, keep_all: bool = False) -> list[Unit]:
    """`text` cut into units that cover it exactly, in order."""
    units: list[Unit] = []
    at = 0
    for span in [*protected_spans(text), Span(len(text), len(text), "code")]:
        _plain_units(text, at, span.start, units)
        if span.end > span.start:
            # the spaces before a protected span travel with it
            start = span.start
            if units and units[-1].kind == "word" and text[units[-1].start : units[-1].end].isspace():
                start = units.pop().start
            units.append(Unit(start, span.end, span.kind, always=span.kept))
        at = span.end
    if keep_all:
        for unit in units:
            unit.always = True
    return units


def _plain_units(text: str, start: int, end: int, out: list[Unit]) -> None:
    at = start
    while at < end:
        brk = _BREAK.match(text, at, end)
        if brk and brk.end() > at:
            out.append(Unit(at, brk.end(), "break", always=True))
            at = brk.end()
            continue
        word = _WORD.match(text, at, end)
        if word and word.end() > at:
            out.append(Unit(at, word.end(), "word"))
            at = word.end()
            continue
        out.append(Unit(at, at + 1, "word"))  # anything else, one character at a time
        at += 1


def assign_tokens(units: list[Unit], starts: np.ndarray, scores: np.ndarray | None) -> None:
    """Set each unit's token count and score from the tokens starting at `starts` (chars, sorted)."""
    if not units:
        return
    bounds = np.asarray([u.start for u in units], dtype=np.int64)
    owner = np.clip(np.searchsorted(bounds, starts, side="right") - 1, 0, len(units) - 1)
    counts = np.bincount(owner, minlength=len(units))
    if scores is None:
        for index, unit in enumerate(units):
            unit.tokens = int(counts[index])
        return
    sums = np.bincount(owner, weights=scores, minlength=len(units))
    peaks = np.full(len(units), -np.inf)
    np.maximum.at(peaks, owner, scores)
    for index, unit in enumerate(units):
        unit.tokens = int(counts[index])
        if counts[index]:
            # a word is worth its mean surprise per token; a number, URL or ID its most surprising
            # token, since its later digits are predictable but cutting them would corrupt it
            atomic = unit.kind in ATOMIC_KINDS
            unit.score = float(peaks[index] if atomic else sums[index] / counts[index])


def _glues(before: str, after: str) -> bool:
    return bool(before) and bool(after) and before[-1].isalnum() and after[0].isalnum()


def render(text: str, units: list[Unit], kept: list[bool]) -> str:
    """The kept units joined; a line break with nothing kept since the previous one is dropped, and the
    first kept word of a line loses its leading spaces."""
    pieces: list[str] = []
    line_has_text = False
    gap = False  # a unit was dropped since the last kept one
    for unit, keep in zip(units, kept, strict=True):
        if not keep:
            gap = True
            continue
        piece = text[unit.start : unit.end]
        if gap and pieces and _glues(pieces[-1], piece):
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
    return "".join(pieces)
