"""The served model's tokenizer as callers need it: count, encode (with character offsets), render a chat.

Backends hand one out through `Backend.tokenizer()` when the model's tokenizer is at hand in this process
(the embedded engine always; a remote server when its model folder, or a `tokenizer=` folder, is on this
machine), and None otherwise, so a stage asks instead of probing.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np

from .errors import UnsupportedRequest


class HFTokenizer:
    """A transformers tokenizer behind the `Tokenizer` protocol of `backend.base`."""

    def __init__(self, tokenizer: Any, name: str) -> None:
        self.hf = tokenizer
        self.name = name  # the model whose tokens these are

    def _rust(self) -> Any | None:
        """The Rust tokenizer under a fast transformers tokenizer, when it is set to neither truncate nor pad:
        calling it directly skips the wrapper's per-call Python work (most of the time of encoding an
        8k-token prompt with offsets). None for a slow tokenizer, which goes through the wrapper."""
        rust = getattr(self.hf, "backend_tokenizer", None)
        if rust is None or rust.truncation is not None or rust.padding is not None:
            return None
        return rust

    def encode(self, text: str) -> list[int]:
        """Token ids of `text`, no special tokens added."""
        rust = self._rust()
        if rust is not None:
            return list(rust.encode(text, add_special_tokens=False).ids)
        return list(self.hf(text, add_special_tokens=False)["input_ids"])

    def encode_with_offsets(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """(ids [n] int64, spans [n, 2] int64 character offsets [start, end) into `text`)."""
        return self.encode_many_with_offsets([text])[0]

    def decode(self, ids: Sequence[int]) -> str:
        """The text of token ids, special tokens included."""
        return str(self.hf.decode(list(ids), skip_special_tokens=False))

    def token_texts(self, ids: Sequence[int]) -> list[str]:
        """Each token's own text (as logprobs name tokens)."""
        return [str(self.hf.decode([i], skip_special_tokens=False)) for i in ids]

    def count(self, text: str) -> int:
        return len(self.encode(text))

    def count_many(self, texts: Sequence[str]) -> list[int]:
        """Token counts of several texts from one batch call (the Rust tokenizer runs them in parallel)."""
        if not texts:
            return []
        rust = self._rust()
        if rust is not None:
            return [len(e.ids) for e in rust.encode_batch(list(texts), add_special_tokens=False)]
        return [len(ids) for ids in self.hf(list(texts), add_special_tokens=False)["input_ids"]]

    def encode_many_with_offsets(self, texts: Sequence[str]) -> list[tuple[np.ndarray, np.ndarray]]:
        """`encode_with_offsets` of several texts from one batch call."""
        if not texts:
            return []
        rust = self._rust()
        if rust is not None:
            return [
                (np.asarray(e.ids, dtype=np.int64), np.asarray(e.offsets, dtype=np.int64).reshape(-1, 2))
                for e in rust.encode_batch(list(texts), add_special_tokens=False)
            ]
        encoded = self.hf(list(texts), add_special_tokens=False, return_offsets_mapping=True)
        return [
            (np.asarray(ids, dtype=np.int64), np.asarray(spans, dtype=np.int64).reshape(-1, 2))
            for ids, spans in zip(encoded["input_ids"], encoded["offset_mapping"], strict=True)
        ]

    @property
    def has_chat_template(self) -> bool:
        return bool(getattr(self.hf, "chat_template", None))

    @property
    def tool_format(self) -> str | None:
        """ "hermes" when the chat template has a tools section whose calls are `<tool_call>` JSON blocks
        (Qwen2.5, Qwen3, Hermes and their kin), else None (SmolLM2's template has no tools section)."""
        template = str(getattr(self.hf, "chat_template", None) or "")
        return "hermes" if "tools" in template and "<tool_call>" in template else None

    def render_chat(
        self,
        messages: Sequence[dict[str, Any]],
        *,
        add_generation_prompt: bool = True,
        tools: Sequence[dict[str, Any]] | None = None,
    ) -> str:
        """The model's prompt text for `messages` (and `tools`, for a template with a tools section);
        UnsupportedRequest when the model has no chat template."""
        if not self.has_chat_template:
            raise UnsupportedRequest(f"the model {self.name} has no chat template")
        extra = {"tools": list(tools)} if tools else {}
        return str(
            self.hf.apply_chat_template(
                list(messages), add_generation_prompt=add_generation_prompt, tokenize=False, **extra
            )
        )


@functools.lru_cache(maxsize=8)
def load_hf_tokenizer(path: str) -> Any:
    """A transformers tokenizer from a local folder, never from a hub; one per folder per process (the
    engine, a scorer and the token counters share it)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path, local_files_only=True)


@functools.cache
def packaged_tokenizer() -> HFTokenizer:
    """The packaged SmolLM2's tokenizer: what counts tokens where the serving model's is not at hand."""
    from .models import resolve_causal_lm

    ref = resolve_causal_lm()
    return HFTokenizer(load_hf_tokenizer(str(ref.path)), ref.model_id)
