"""Counting tokens for budgets, in one place: the serving model's tokenizer when the backend has it at
hand, else the packaged SmolLM2's (a remote server whose model folder is elsewhere). Every stage counts
through the pipeline `Context`'s counter; the CLI and the SDK take theirs from here too."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from backend import Backend
from backend.base import Tokenizer


@dataclass(frozen=True)
class TokenCounter:
    """`count(text)` is the number of tokens of `text` (no special tokens) in the tokenizer `name`;
    `many(texts)` counts several in one call (a fast tokenizer encodes them as one batch)."""

    name: str
    count: Callable[[str], int]
    count_many: Callable[[Sequence[str]], list[int]] | None = field(default=None, compare=False)
    # (ids, [n, 2] character spans) of several texts in one call, where the tokenizer gives offsets
    encode_many: Callable[[Sequence[str]], list[tuple[Any, Any]]] | None = field(default=None, compare=False)

    def __call__(self, text: str) -> int:
        return self.count(text)

    def many(self, texts: Sequence[str]) -> list[int]:
        if self.count_many is not None:
            return self.count_many(texts)
        return [self.count(text) for text in texts]

    def at_least(self, texts: Sequence[str], floor: int) -> list[int]:
        """Counts where it matters whether a text has `floor` tokens: a text of 16 characters per token
        of the floor or more has them (no tokenizer packs more into a token), so it is not tokenized
        and `floor` stands for its count."""
        short = [i for i, text in enumerate(texts) if len(text) < floor * 16]
        counts = [floor] * len(texts)
        for i, n in zip(short, self.many([texts[i] for i in short]), strict=True):
            counts[i] = n
        return counts

    @classmethod
    def of(cls, count: Callable[[str], int]) -> TokenCounter:
        """A TokenCounter for any counting function (a TokenCounter is returned as it is)."""
        return count if isinstance(count, TokenCounter) else cls(getattr(count, "__name__", "custom"), count)


def token_counter(backend: Backend | None = None) -> TokenCounter:
    """The backend's own tokenizer when it has one here, else the packaged SmolLM2 tokenizer."""
    tokenizer = backend.tokenizer() if backend is not None else None
    if tokenizer is not None:
        return _counter_of(tokenizer)
    return default_token_counter()


def default_token_counter() -> TokenCounter:
    from backend.tokenizer import packaged_tokenizer

    return _counter_of(packaged_tokenizer())


def _counter_of(tokenizer: Tokenizer) -> TokenCounter:
    return TokenCounter(
        tokenizer.name, tokenizer.count, tokenizer.count_many, tokenizer.encode_many_with_offsets
    )
