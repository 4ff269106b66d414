"""Constrained decoding: a per-row token mask from a grammar, advanced on every accepted token.

The library is llguidance (Microsoft's Rust engine behind Guidance; vLLM and SGLang both offer it as a
grammar backend). Weighed against the others on this CPU machine with SmolLM2's tokenizer:

- llguidance: a 3 MB wheel with no dependencies; JSON Schema, regex and Lark grammars in one API; no
  per-grammar precompilation over the vocabulary (the mask is computed lazily, ~0.1 ms a token), so a
  new schema costs < 1 ms; its HF tokenizer adapter takes SmolLM2's fast tokenizer as is.
- xgrammar (SGLang's default): works on the CPU too, but on Linux x86_64 its wheel requires triton
  (a 285 MB wheel) and apache-tvm-ffi even when no GPU is used, adds 1.6 s to import, and takes
  grammars as EBNF; its compile cache is built in.
- outlines-core: regex only (a JSON schema becomes a regex), so neither `json_object` (unbounded
  nesting) nor context-free grammars, and its vocabulary helper reaches for a hub.

So `grammar` constraints here are Lark (llguidance's dialect). What we add: a bounded LRU of checked
grammars, each with a pristine matcher that a request deep-copies (~10 µs); compiling runs on the
caller's thread (local.py sends it to a worker), never on the engine thread. llguidance's own torch
helper for applying the mask is torch.compile'd (14 s on the first CPU call), so `apply_bitmasks`
unpacks the bits itself.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from typing import Any

import numpy as np
import torch

from ..errors import InvalidRequest
from ..sampling_params import Constraint

CACHE_SIZE = 64  # distinct grammars kept compiled
# One space after ',' and ':' and no other whitespace: the way models usually write JSON, and a small
# model cannot wander off into endless newlines between the tokens that matter.
JSON_STYLE = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}


class GrammarError(RuntimeError):
    """A row's matcher refused a token or failed: that row fails, the others go on."""


class RowGrammar:
    """One request's matcher: which tokens may come next, and whether the grammar is complete."""

    def __init__(self, matcher: Any) -> None:
        self._matcher = matcher

    def bitmask(self) -> np.ndarray:
        """Allowed next tokens, one bit per token id, as int32 words."""
        self._raise_if_failed()
        return np.frombuffer(self._matcher.compute_bitmask(), dtype=np.int32)

    def accept(self, token: int) -> None:
        if not self._matcher.consume_token(token):
            self._raise_if_failed()
            raise GrammarError(f"the grammar refused token {token}")

    @property
    def done(self) -> bool:
        """True once nothing more may follow (the grammar is complete, or EOS was accepted)."""
        return bool(self._matcher.is_stopped())

    def _raise_if_failed(self) -> None:
        if self._matcher.is_error():
            raise GrammarError(f"grammar matcher failed: {self._matcher.get_error()[:300]}")


class GrammarCompiler:
    """Turns a Constraint into matchers for one model's tokenizer; thread-safe, with a bounded LRU."""

    def __init__(self, hf_tokenizer: Any, vocab_size: int, eos_ids: frozenset[int]) -> None:
        self._hf_tokenizer = hf_tokenizer
        self._vocab_size = vocab_size
        self._eos_ids = sorted(eos_ids)
        self._tokenizer: Any = None
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, Any] = OrderedDict()  # grammar text -> pristine matcher
        self.compiled = 0  # grammars built (cache misses), for tests and metrics

    def matcher(self, constraint: Constraint) -> RowGrammar:
        """A fresh matcher for `constraint`; InvalidRequest (naming its field) if it does not compile."""
        constraint.check()
        grammar = grammar_text(constraint)
        with self._lock:
            template = self._cache.get(grammar)
            if template is not None:
                self._cache.move_to_end(grammar)
                return RowGrammar(template.deep_copy())
        template = self._build(grammar, constraint)
        with self._lock:
            self._cache[grammar] = template
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        return RowGrammar(template.deep_copy())

    def _build(self, grammar: str, constraint: Constraint) -> Any:
        import llguidance

        tokenizer = self._llg_tokenizer()
        error = llguidance.LLMatcher.validate_grammar(grammar, tokenizer)
        if error:
            raise InvalidRequest(
                f"invalid {constraint.kind} constraint: {error[:500]}", param=constraint.field_name
            )
        matcher = llguidance.LLMatcher(tokenizer, grammar, log_level=0)
        if matcher.is_error():
            raise InvalidRequest(
                f"invalid {constraint.kind} constraint: {matcher.get_error()[:500]}",
                param=constraint.field_name,
            )
        self.compiled += 1
        return matcher

    def _llg_tokenizer(self) -> Any:
        with self._lock:  # built once (~0.3 s for SmolLM2), on first use
            if self._tokenizer is None:
                import llguidance.hf

                self._tokenizer = llguidance.hf.from_tokenizer(
                    self._hf_tokenizer, n_vocab=self._vocab_size, eos_token=self._eos_ids
                )
            return self._tokenizer


def grammar_text(constraint: Constraint) -> str:
    """The constraint as an llguidance grammar (also the cache key)."""
    from llguidance import LLMatcher

    if constraint.kind == "json_schema":
        assert constraint.schema is not None
        schema = _strict(constraint.schema) if constraint.strict else constraint.schema
        return str(LLMatcher.grammar_from_json_schema(json.dumps(schema), defaults=JSON_STYLE))
    if constraint.kind == "json_object":
        return str(LLMatcher.grammar_from_json_schema('{"type": "object"}', defaults=JSON_STYLE))
    if constraint.kind == "regex":
        return str(LLMatcher.grammar_from_regex(constraint.pattern or ""))
    if constraint.kind == "choice":
        # JSON string literals are valid Lark literals, quotes and escapes included
        return str(
            LLMatcher.grammar_from_lark("start: " + " | ".join(json.dumps(c) for c in constraint.choices))
        )
    return str(LLMatcher.grammar_from_lark(constraint.grammar or ""))


def _strict(node: Any) -> Any:
    """OpenAI's strict mode: an object schema that says nothing about extra properties allows none."""
    if isinstance(node, list):
        return [_strict(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _strict(value) for key, value in node.items()}
    if "properties" in out and "additionalProperties" not in out:
        out["additionalProperties"] = False
    return out


_BITS = torch.arange(32, dtype=torch.int32)


def apply_bitmasks(logits: torch.Tensor, bitmasks: torch.Tensor) -> None:
    """Set to -inf, in place, the logits of tokens a row's bitmask ([rows, words] int32) leaves out."""
    vocab = logits.shape[-1]
    allowed = ((bitmasks.unsqueeze(-1) >> _BITS) & 1).bool().flatten(1)
    if allowed.shape[1] < vocab:  # ids past the tokenizer's words (padding rows of the embedding)
        allowed = torch.cat([allowed, allowed.new_zeros(allowed.shape[0], vocab - allowed.shape[1])], dim=1)
    logits.masked_fill_(~allowed[:, :vocab], float("-inf"))
