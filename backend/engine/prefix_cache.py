"""An LRU store of prompt prefixes and their KV, matched token by token like SGLang's radix cache.

A lookup returns the entry sharing the longest run of leading tokens with the prompt; a partial match
is usable too (its first n columns are exactly the KV of those n tokens). Entries are evicted least
recently used first once their bytes exceed the budget; pinned entries (from `warm_prefix`) go last.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from .kv import LayerKV


@dataclass
class PrefixEntry:
    tokens: np.ndarray  # int64 token ids
    layers: list[LayerKV]  # single-row KV, [1, kv_heads, len(tokens), head_dim]
    nbytes: int
    pinned: bool = False


@dataclass(frozen=True)
class PrefixMatch:
    entry: PrefixEntry | None
    length: int  # leading tokens of the prompt whose KV the entry holds

    @classmethod
    def none(cls) -> PrefixMatch:
        return cls(None, 0)


def common_prefix_length(a: np.ndarray, b: np.ndarray) -> int:
    n = min(len(a), len(b))
    if n == 0:
        return 0
    diff = np.flatnonzero(a[:n] != b[:n])
    return int(diff[0]) if len(diff) else n


class PrefixCache:
    def __init__(self, budget_bytes: int = 512 * 2**20, min_tokens: int = 16) -> None:
        self.budget_bytes = budget_bytes
        self.min_tokens = min_tokens  # shorter prefixes are cheaper to recompute than to look up and copy
        self._entries: OrderedDict[bytes, PrefixEntry] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def nbytes(self) -> int:
        return sum(e.nbytes for e in self._entries.values())

    def lookup(self, tokens: np.ndarray, limit: int) -> PrefixMatch:
        """The longest cached run of `tokens[:limit]`, or no match if shorter than `min_tokens`."""
        best = PrefixMatch.none()
        with self._lock:
            for key, entry in self._entries.items():
                n = min(common_prefix_length(entry.tokens, tokens), limit)
                if n > best.length:
                    best = PrefixMatch(entry, n)
                    best_key = key
            if best.length >= self.min_tokens:
                self._entries.move_to_end(best_key)
                self.hits += 1
                return best
            self.misses += 1
            return PrefixMatch.none()

    def insert(self, tokens: np.ndarray, layers: list[LayerKV], *, pinned: bool = False) -> None:
        if len(tokens) < self.min_tokens:
            return
        key = tokens.astype(np.int64).tobytes()
        nbytes = sum(k.numel() * k.element_size() + v.numel() * v.element_size() for k, v in layers)
        with self._lock:
            old = self._entries.pop(key, None)
            pinned = pinned or (old.pinned if old else False)
            # An entry that is a strict prefix of the new one adds nothing: the new one answers its lookups.
            for other_key in [k for k, e in self._entries.items() if _is_prefix(e.tokens, tokens)]:
                if not self._entries[other_key].pinned:
                    del self._entries[other_key]
            self._entries[key] = PrefixEntry(tokens.astype(np.int64), layers, nbytes, pinned)
            self._evict()

    def covers(self, tokens: np.ndarray) -> bool:
        """True when some entry already holds all of `tokens`."""
        with self._lock:
            return any(common_prefix_length(e.tokens, tokens) == len(tokens) for e in self._entries.values())

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def _evict(self) -> None:
        total = sum(e.nbytes for e in self._entries.values())
        for pinned_pass in (False, True):
            for key in list(self._entries):
                if total <= self.budget_bytes:
                    return
                entry = self._entries[key]
                if entry.pinned == pinned_pass:
                    total -= entry.nbytes
                    del self._entries[key]


def _is_prefix(short: np.ndarray, long: np.ndarray) -> bool:
    return len(short) < len(long) and common_prefix_length(short, long) == len(short)
