"""Counting tokens for budgets: the serving backend's tokenizer when one is at hand, else SmolLM2's."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TokenCounter:
    """`count(text)` is the number of tokens of `text` (no special tokens) in the tokenizer `name`."""

    name: str
    count: Callable[[str], int]

    def __call__(self, text: str) -> int:
        return self.count(text)


def token_counter(backend: Any = None) -> TokenCounter:
    """The backend's own tokenizer when it has one (a remote backend without a local tokenizer has
    none), else the packaged SmolLM2 tokenizer."""
    if backend is not None:
        from backend import UnsupportedRequest

        try:
            backend.tokenize("probe")
        except (UnsupportedRequest, NotImplementedError, AttributeError):
            pass
        else:
            return TokenCounter(str(backend.model_id), lambda text: len(backend.tokenize(text)))
    return default_token_counter()


@functools.cache
def default_token_counter() -> TokenCounter:
    tokenizer = _smollm2_tokenizer()
    return TokenCounter(
        "SmolLM2-135M-Instruct", lambda text: len(tokenizer(text, add_special_tokens=False)["input_ids"])
    )


@functools.cache
def _smollm2_tokenizer() -> Any:
    from transformers import AutoTokenizer

    from backend.models import resolve_causal_lm

    return AutoTokenizer.from_pretrained(str(resolve_causal_lm().path))
