"""Counting tokens for budgets, in one place: the serving model's tokenizer when the backend has it at
hand, else the packaged SmolLM2's (a remote server whose model folder is elsewhere). Every stage counts
through the pipeline `Context`'s counter; the CLI and the SDK take theirs from here too."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from backend import Backend


@dataclass(frozen=True)
class TokenCounter:
    """`count(text)` is the number of tokens of `text` (no special tokens) in the tokenizer `name`."""

    name: str
    count: Callable[[str], int]

    def __call__(self, text: str) -> int:
        return self.count(text)


def token_counter(backend: Backend | None = None) -> TokenCounter:
    """The backend's own tokenizer when it has one here, else the packaged SmolLM2 tokenizer."""
    tokenizer = backend.tokenizer() if backend is not None else None
    if tokenizer is not None:
        return TokenCounter(tokenizer.name, tokenizer.count)
    return default_token_counter()


def default_token_counter() -> TokenCounter:
    from backend.tokenizer import packaged_tokenizer

    tokenizer = packaged_tokenizer()
    return TokenCounter(tokenizer.name, tokenizer.count)
