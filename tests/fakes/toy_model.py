"""A deterministic stand-in for a language model, shared by the fake servers.

Tokens are characters (id = code point) after a BOS id; the "model" answers with the last word of the
prompt in capitals (" hello world" -> " WORLD"; chat markers like <|assistant|> do not count) and then EOS. Prompt logprobs follow a fixed formula so
that tests can check their alignment exactly. Embeddings are [id, 0, 0, 0] vectors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

BOS, EOS = 1, 2
HIDDEN = 4


def tokenize(text: str) -> list[int]:
    return [BOS, *(ord(c) for c in text)]


def detokenize(ids: list[int]) -> str:
    return "".join(chr(i) for i in ids if 9 <= i < 0x110000)


def embed(ids: list[int]) -> list[list[float]]:
    return [[float(i), 0.0, 0.0, 0.0] for i in ids]


def unembed(vectors: list[list[float]]) -> list[int]:
    if any(len(v) != HIDDEN for v in vectors):
        raise ValueError(f"embeddings must have hidden size {HIDDEN}")
    return [round(v[0]) for v in vectors]


def prompt_logprob(ids: list[int], position: int) -> float:
    """log p(ids[position] | ids before it), a fixed formula in nats (position >= 1)."""
    return -0.25 - (ids[position] * 7 + position) % 5


def answer_text(prompt_ids: list[int]) -> str:
    words = [w for w in detokenize(prompt_ids).split() if not w.startswith("<|")]  # not chat markers
    return " " + (words[-1].upper() if words else "OK")


@dataclass
class Decoded:
    text: str
    ids: list[int]
    finish: dict[str, Any]


def decode(prompt_ids: list[int], max_new_tokens: int, stop: list[str] | str | None = None) -> Decoded:
    """Greedy 'decoding' of the fixed answer, honouring max_new_tokens and stop strings (trimmed)."""
    stops = [stop] if isinstance(stop, str) else list(stop or [])
    text, ids = "", []
    for char in answer_text(prompt_ids):
        if len(ids) == max_new_tokens:
            return Decoded(text, ids, {"type": "length", "length": max_new_tokens})
        text += char
        ids.append(ord(char))
        for s in stops:
            if text.endswith(s):
                return Decoded(text[: -len(s)], ids, {"type": "stop", "matched": s})
    if len(ids) == max_new_tokens:
        return Decoded(text, ids, {"type": "length", "length": max_new_tokens})
    return Decoded(text, [*ids, EOS], {"type": "stop", "matched": EOS})


class PrefixMemory:
    """What a radix / prefix cache remembers: every prompt seen; a prompt's cached tokens are its longest
    common prefix with one of them (at most all but its last token, which is always computed)."""

    def __init__(self) -> None:
        self.prompts: list[tuple[int, ...]] = []

    def cached(self, ids: list[int]) -> int:
        best = 0
        for seen in self.prompts:
            n = 0
            for a, b in zip(seen, ids, strict=False):
                if a != b:
                    break
                n += 1
            best = max(best, n)
        return min(best, max(len(ids) - 1, 0))

    def remember(self, ids: list[int]) -> None:
        self.prompts.append(tuple(ids))

    def clear(self) -> None:
        self.prompts.clear()
