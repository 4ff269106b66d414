"""Compression results cached by content, so that what a conversation repeats is compressed once.

A key is a hash of the text (one chat message, or a whole prompt), the options that shape the output, the
scorer and the token counter. Compression is deterministic for a key (the same input and options give the
same output), and a hit returns the stored result byte for byte: a system prompt, a few-shot block or an
earlier turn keeps exactly the text it was compressed to the first time, so the backend's prefix cache
(SGLang's radix cache, a provider's prompt cache) keeps matching it. Bounded by the characters it holds
(about a byte each for ASCII text), least recently used first out.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Any

from .options import CompressOptions
from .result import CompressionResult

# Options that only change what the report shows, never the compressed text.
REPORT_ONLY = frozenset({"annotate"})


def cache_key(kind: str, content: Any, options: CompressOptions, *context: str) -> str:
    """A stable hash of what a compression's output depends on."""
    shaping = options.model_dump(exclude=set(REPORT_ONLY), mode="json")
    payload = json.dumps([kind, content, shaping, *context], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    entries: int = 0
    chars: int = 0  # characters held (original and compressed text), about the bytes of memory used


class CompressionCache:
    def __init__(self, max_chars: int = 64 * 2**20) -> None:
        self.max_chars = max_chars
        self._entries: OrderedDict[str, tuple[CompressionResult, int]] = OrderedDict()
        self._lock = threading.Lock()
        self.stats = CacheStats()

    def get(self, key: str) -> CompressionResult | None:
        with self._lock:
            found = self._entries.get(key)
            if found is None:
                self.stats.misses += 1
                return None
            self._entries.move_to_end(key)
            self.stats.hits += 1
            stored = found[0]
            messages = [dict(m) for m in stored.messages] if stored.messages is not None else None
            return replace(stored, messages=messages, timings={}, notes=list(stored.notes))

    def put(self, key: str, result: CompressionResult) -> None:
        size = _size(result)
        if size > self.max_chars:
            return
        with self._lock:
            if key in self._entries:
                return
            self._entries[key] = (result, size)
            self.stats.chars += size
            while self.stats.chars > self.max_chars:
                _, (_, dropped) = self._entries.popitem(last=False)
                self.stats.chars -= dropped
            self.stats.entries = len(self._entries)


def _size(result: CompressionResult) -> int:
    messages = sum(len(str(m.get("content") or "")) for m in result.messages or [])
    return len(result.text) + sum(len(p.text) for p in result.pieces) + messages
