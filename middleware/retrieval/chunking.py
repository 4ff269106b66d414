"""Cutting documents into passages: whole sentences packed up to a token budget, with overlap.

Every chunk keeps the id and source of its document and its character offsets, so that
`document_text[chunk.start:chunk.end] == chunk.text`. A sentence longer than the budget is cut
between words (and a "word" longer than the budget between characters); nothing is ever dropped.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from ..text import sentence_spans
from .errors import InvalidInput

__all__ = ["Chunk", "ChunkingConfig", "chunk_text", "sentence_spans"]

_WORD = re.compile(r"\S+\s*")


@dataclass(frozen=True)
class ChunkingConfig:
    """`max_tokens`: the most tokens a chunk may have; `overlap_tokens`: at most this many tokens of
    whole trailing sentences of a chunk are repeated at the start of the next one."""

    max_tokens: int = 200
    overlap_tokens: int = 32

    def __post_init__(self) -> None:
        if self.max_tokens < 8:
            raise InvalidInput("chunk max_tokens must be at least 8", param="chunk_tokens")
        if not 0 <= self.overlap_tokens < self.max_tokens:
            raise InvalidInput(
                "chunk overlap_tokens must be >= 0 and smaller than max_tokens", param="overlap_tokens"
            )


@dataclass(frozen=True)
class Chunk:
    """A passage of a document: `text == document_text[start:end]`, `tokens` counted exactly."""

    document_id: str
    source: str
    index: int  # position among its document's chunks
    start: int  # character offset in the document text (inclusive)
    end: int  # character offset (exclusive)
    text: str
    tokens: int


@dataclass(frozen=True)
class _Unit:
    start: int
    end: int
    tokens: int


def chunk_text(
    text: str,
    *,
    document_id: str,
    source: str,
    count: Callable[[str], int],
    config: ChunkingConfig | None = None,
) -> list[Chunk]:
    """The chunks of one document, in order; `count(text)` gives tokens. Empty text gives no chunk."""
    config = config or ChunkingConfig()
    units: list[_Unit] = []
    for start, end in sentence_spans(text):
        tokens = count(text[start:end])
        if tokens <= config.max_tokens:
            units.append(_Unit(start, end, tokens))
        else:
            units.extend(_word_units(text, start, end, count, config.max_tokens))
    chunks: list[Chunk] = []
    first = 0
    while first < len(units):
        last = _pack(units, first, config.max_tokens)
        start, end = units[first].start, units[last - 1].end
        # Unit counts are counted apart; the joined text may merge differently, so check it whole.
        tokens = count(text[start:end])
        while tokens > config.max_tokens and last - first > 1:
            last -= 1
            end = units[last - 1].end
            tokens = count(text[start:end])
        chunks.append(Chunk(document_id, source, len(chunks), start, end, text[start:end], tokens))
        if last >= len(units):
            break
        first = _overlap_start(units, first, last, config)
    return chunks


def _pack(units: list[_Unit], first: int, budget: int) -> int:
    """The end (exclusive) of the longest run of units from `first` whose token sum fits `budget`."""
    total, last = units[first].tokens, first + 1
    while last < len(units) and total + units[last].tokens <= budget:
        total += units[last].tokens
        last += 1
    return last


def _overlap_start(units: list[_Unit], first: int, last: int, config: ChunkingConfig) -> int:
    """Where the next chunk starts: back from `last` by whole units worth at most `overlap_tokens`,
    never back to `first` (so every chunk adds something new) and leaving room for the next unit."""
    start, carried = last, 0
    room = config.max_tokens - units[last].tokens
    while start - 1 > first:
        tokens = units[start - 1].tokens
        if carried + tokens > config.overlap_tokens or carried + tokens > room:
            break
        carried += tokens
        start -= 1
    return start


def _word_units(text: str, start: int, end: int, count: Callable[[str], int], budget: int) -> list[_Unit]:
    units: list[_Unit] = []
    for match in _WORD.finditer(text, start, end):
        word_start, word_end = match.start(), match.start() + len(match.group().rstrip())
        tokens = count(text[word_start:word_end])
        if tokens <= budget:
            units.append(_Unit(word_start, word_end, tokens))
            continue
        # A "word" longer than the budget (a URL, base64): cut it into character windows that fit.
        width = max(1, (word_end - word_start) * budget // tokens)
        piece_start = word_start
        while piece_start < word_end:
            piece_end = min(word_end, piece_start + width)
            while count(text[piece_start:piece_end]) > budget and piece_end - piece_start > 1:
                piece_end = piece_start + (piece_end - piece_start) // 2
            units.append(_Unit(piece_start, piece_end, count(text[piece_start:piece_end])))
            piece_start = piece_end
    return units
