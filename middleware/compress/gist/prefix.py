"""Where a gist's prefix sits in a chat request, and the exact tokens it stands for.

A prefix is text in one of two places: the whole system message (`role="system"`: a system prompt, a
tool manual) or the start of the first user message (`role="user"`: a few-shot block that the question
follows, as in LLMLingua's GSM8K framing). Framing it renders the chat template around a placeholder
query with the serving model's own template and keeps the leading tokens that every request with this
prefix shares. The serving stage matches on exactly those tokens: a request uses a gist when its
rendered prompt begins with the gist's prefix tokens.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from ...token_ids import common_prefix_length, starts_with
from .errors import PrefixTooShort, TooManyGistTokens

Role = Literal["system", "user"]
# Below this many tokens a gist saves too little to be worth its training and its lookup.
MIN_PREFIX_TOKENS = 64
MAX_GIST_TOKENS = 512
# Stand-ins for the query while rendering: the head of the template must not depend on what follows.
_PLACEHOLDER = "\u2063QUERY\u2063"
# Queries that start with whitespace are not among them: they may merge with the template's line break
# (such a request then simply does not match the gist and runs as sent).
_PROBES = ("What", "I", "1", "Hello, world", "(", "é", '"')


class ChatRenderer(Protocol):
    """What framing needs from a backend (every `backend.Backend` with a chat template has it)."""

    def apply_chat_template(
        self, messages: Sequence[dict[str, Any]], *, add_generation_prompt: bool = True
    ) -> str: ...

    def tokenize(self, text: str) -> list[int]: ...


@dataclass(frozen=True)
class PrefixSpec:
    """The prefix as a user gives it: its text and where it sits in a chat."""

    text: str
    role: Role = "system"

    def messages(self, query: str) -> list[dict[str, Any]]:
        """The chat messages of a request that carries this prefix and then `query`."""
        if self.role == "system":
            return [{"role": "system", "content": self.text}, {"role": "user", "content": query}]
        return [{"role": "user", "content": self.text + query}]

    @property
    def text_hash(self) -> str:
        return hashlib.sha256(f"{self.role}\0{self.text}".encode()).hexdigest()


@dataclass(frozen=True)
class FramedPrefix:
    """A prefix rendered for one model: the token ids every request with this prefix begins with."""

    spec: PrefixSpec
    token_ids: tuple[int, ...]

    @property
    def hash(self) -> str:
        """sha256 of the prefix token ids (the store's key, with the model's fingerprint)."""
        return prefix_hash(self.token_ids)

    def __len__(self) -> int:
        return len(self.token_ids)

    def prompt_ids(self, renderer: ChatRenderer, query: str) -> list[int] | None:
        """The full prompt ids of a request with this prefix and `query`, or None if the query's first
        token would merge with the prefix's last one (the request would not begin with the prefix)."""
        ids = renderer.tokenize(renderer.apply_chat_template(self.spec.messages(query)))
        return ids if starts_with(ids, self.token_ids) else None


def frame_prefix(spec: PrefixSpec, renderer: ChatRenderer) -> FramedPrefix:
    """The prefix's tokens under the renderer's chat template (see the module docstring)."""
    if not spec.text.strip():
        raise PrefixTooShort("the prefix is empty")
    rendered = renderer.apply_chat_template(spec.messages(_PLACEHOLDER))
    head = rendered[: rendered.index(_PLACEHOLDER)]
    ids = renderer.tokenize(head)
    # A query's first characters may merge with the head's last token ("Question: " + "Tom" ->
    # "Question", ":", " Tom"); keep only what every probe query leaves as it is.
    for probe in _PROBES:
        full = renderer.tokenize(renderer.apply_chat_template(spec.messages(probe)))
        ids = ids[: common_prefix_length(ids, full)]
    return FramedPrefix(spec, tuple(ids))


def check_gist_size(prefix_tokens: int, k: int) -> None:
    """Raise unless k soft tokens can sensibly stand for a prefix of `prefix_tokens` tokens."""
    if k < 1 or k > MAX_GIST_TOKENS:
        raise TooManyGistTokens(f"a gist has 1 to {MAX_GIST_TOKENS} tokens, not {k}")
    if k >= prefix_tokens:
        raise TooManyGistTokens(
            f"a gist of {k} tokens is not smaller than the prefix it replaces ({prefix_tokens} tokens); "
            "choose fewer gist tokens"
        )
    if prefix_tokens < MIN_PREFIX_TOKENS:
        raise PrefixTooShort(
            f"the prefix has {prefix_tokens} tokens; a gist is worth training from {MIN_PREFIX_TOKENS} "
            "tokens on (send a short prefix as it is)"
        )


def prefix_hash(token_ids: Sequence[int]) -> str:
    return hashlib.sha256(",".join(map(str, token_ids)).encode()).hexdigest()
