"""Scoring requests as encoder rows, the same way in training and at run time.

A request (text, prefix) becomes one or more rows of at most `row_tokens` wordpieces:

    [CLS] prefix [SEP] (overlap) text chunk [SEP]
      type 0 ....... | type 1 ...................

The prefix is what the teacher read before the text: the preceding text in plain mode, the question
(and the text before the window) in question-aware mode; a long one keeps its head and its tail. A text
longer than a row is cut into chunks; every chunk after the first also reads `overlap` wordpieces of the
text before it (unscored), since the teacher, a causal LM, saw them. Every wordpiece of the text is
scored by exactly one row.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .card import Geometry


@dataclass(frozen=True)
class Row:
    request: int  # which request it scores
    ids: np.ndarray  # [n] int64 wordpiece ids, special tokens included
    types: np.ndarray  # [n] int64 segment ids: 0 for [CLS] prefix [SEP], 1 after
    at: int  # the position in the row of the first scored wordpiece
    begin: int  # the scored wordpieces are the request's [begin, end)
    end: int


@dataclass(frozen=True)
class Batch:
    rows: list[Row]
    ids: np.ndarray  # [b, n] int64, 0-padded
    mask: np.ndarray  # [b, n] int64
    types: np.ndarray  # [b, n] int64


class RowEncoder:
    """Tokenizes requests (a `tokenizers.Tokenizer` with offsets) and cuts them into rows."""

    def __init__(self, tokenizer: Any, geometry: Geometry) -> None:
        self.tokenizer = tokenizer
        self.geometry = geometry
        self.cls = int(tokenizer.token_to_id("[CLS]"))
        self.sep = int(tokenizer.token_to_id("[SEP]"))

    def encode_texts(self, texts: Sequence[str]) -> list[tuple[np.ndarray, np.ndarray]]:
        """(ids [n] int64, spans [n, 2] int64 character offsets) of each text, without special tokens."""
        if not texts:
            return []
        encodings = self.tokenizer.encode_batch(list(texts), add_special_tokens=False)
        return [
            (np.asarray(e.ids, dtype=np.int64), np.asarray(e.offsets, dtype=np.int64).reshape(-1, 2))
            for e in encodings
        ]

    def count(self, text: str) -> int:
        return len(self.tokenizer.encode(text, add_special_tokens=False).ids)

    def rows(self, texts: Sequence[tuple[np.ndarray, np.ndarray]], prefixes: Sequence[str]) -> list[Row]:
        """The rows of every request, given its encoded text and its prefix (a shared prefix, such as the
        question, is tokenized once)."""
        distinct = list(dict.fromkeys(prefixes))
        encoded = dict(zip(distinct, (ids for ids, _ in self.encode_texts(distinct)), strict=True))
        rows: list[Row] = []
        for index, ((ids, _), prefix) in enumerate(zip(texts, prefixes, strict=True)):
            rows.extend(self._request_rows(index, ids, self._cut_prefix(encoded[prefix])))
        return rows

    def _cut_prefix(self, ids: np.ndarray) -> np.ndarray:
        limit = self.geometry.prefix_tokens
        if len(ids) <= limit:
            return ids
        head = limit // 2
        return np.concatenate([ids[:head], ids[len(ids) - (limit - head) :]])

    def _request_rows(self, index: int, text: np.ndarray, prefix: np.ndarray) -> Iterator[Row]:
        geometry = self.geometry
        room = geometry.row_tokens - 3 - len(prefix)  # text wordpieces a row can hold
        head = np.concatenate([[self.cls], prefix, [self.sep]]).astype(np.int64)
        begin = 0
        while begin < len(text):
            context = 0 if begin == 0 else min(geometry.overlap, begin)
            end = min(len(text), begin + room - context)
            ids = np.concatenate([head, text[begin - context : end], [self.sep]]).astype(np.int64)
            types = np.zeros(len(ids), dtype=np.int64)
            types[len(head) :] = 1
            yield Row(index, ids, types, len(head) + context, begin, end)
            begin = end


def batches(rows: Sequence[Row], max_rows: int, max_tokens: int) -> Iterator[Batch]:
    """Rows sorted by length, packed into padded batches of at most `max_rows` rows and `max_tokens`
    padded wordpieces."""
    order = sorted(range(len(rows)), key=lambda i: len(rows[i].ids))
    group: list[Row] = []
    for index in order:
        row = rows[index]
        if group and (len(group) == max_rows or len(row.ids) * (len(group) + 1) > max_tokens):
            yield _padded(group)
            group = []
        group.append(row)
    if group:
        yield _padded(group)


def _padded(rows: list[Row]) -> Batch:
    width = max(len(r.ids) for r in rows)
    ids = np.zeros((len(rows), width), dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=np.int64)
    types = np.zeros((len(rows), width), dtype=np.int64)
    for i, row in enumerate(rows):
        ids[i, : len(row.ids)] = row.ids
        mask[i, : len(row.ids)] = 1
        types[i, : len(row.ids)] = row.types
    return Batch(rows, ids, mask, types)


def scatter(batch: Batch, values: np.ndarray, out: list[np.ndarray]) -> None:
    """Copy each row's scored values ([b, n] per position) into its request's array in `out`."""
    for i, row in enumerate(batch.rows):
        out[row.request][row.begin : row.end] = values[i, row.at : row.at + row.end - row.begin]
