"""Prefilling a group of prompts in one batched forward, reusing cached and shared prefixes.

For a group it (1) computes, once, the longest prefix that all token-id prompts share and stores its
KV in the prefix cache, (2) gives every row the longest cached prefix it can use, (3) runs the
remaining tokens of all rows together, chunk by chunk, and (4) returns the last-position logits
(the first output token) and, where asked, the log-probability of every prompt token.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .kv import KVBatch, LayerKV, from_prefixes, row_prefix
from .model import LoadedModel
from .prefix_cache import PrefixCache, PrefixMatch, common_prefix_length
from .requests import EngineRequest

CHUNK_TOKENS = 512  # bounds the attention scratch memory of long prompts


@dataclass
class Prefilled:
    batch: KVBatch
    last_logits: torch.Tensor  # [rows, vocab]
    cached_tokens: list[int]
    prompt_logprobs: list[list[float | None] | None]


def shared_prefixes(requests: list[EngineRequest], min_tokens: int) -> list[np.ndarray]:
    """Distinct prefixes that two or more token-id prompts of the group share (each >= min_tokens).

    Each prompt contributes its longest prefix shared with any other prompt; a prefix already contained
    in a longer chosen one is dropped, since a partial cache match serves it.
    """
    rows = [r for r in requests if r.token_ids is not None]
    longest: list[np.ndarray] = []
    for i, a in enumerate(rows):
        best = 0
        for j, b in enumerate(rows):
            if i != j:
                n = common_prefix_length(a.token_ids, b.token_ids)  # type: ignore[arg-type]
                best = max(best, min(n, a.cacheable_limit, b.cacheable_limit))
        if best >= min_tokens:
            longest.append(a.token_ids[:best])  # type: ignore[index]
    chosen: list[np.ndarray] = []
    for prefix in sorted(longest, key=len, reverse=True):
        if not any(common_prefix_length(prefix, c) == len(prefix) for c in chosen):
            chosen.append(prefix)
    return chosen


def warm(model: LoadedModel, cache: PrefixCache, tokens: np.ndarray, *, pinned: bool = False) -> int:
    """Make sure the KV of `tokens` is in the cache; return how many of them were cached already."""
    if len(tokens) < cache.min_tokens:
        return 0
    if cache.covers(tokens):
        return len(tokens)
    match = cache.lookup(tokens, len(tokens))
    base = from_prefixes([match.entry.layers if match.entry else None], [match.length], _template(model))
    rest = torch.from_numpy(tokens[match.length :].astype(np.int64)).unsqueeze(0)
    with torch.inference_mode():
        batch, _ = _run_chunks(model, base, model.embed(rest), [len(tokens) - match.length], None)
    cache.insert(tokens, row_prefix(batch, 0, len(tokens)), pinned=pinned)
    return match.length


def prefill(model: LoadedModel, cache: PrefixCache, requests: list[EngineRequest]) -> Prefilled:
    # Shared prefixes are computed once, before the rows; `unclaimed` remembers, per prefix, how much
    # of it existed before this group, so that (like SGLang) the first prompt that uses it reports only
    # that part as cached and the others report all of it.
    unclaimed: list[tuple[np.ndarray, int]] = [
        (prefix, warm(model, cache, prefix)) for prefix in shared_prefixes(requests, cache.min_tokens)
    ]
    matches: list[PrefixMatch] = []
    cached: list[int] = []
    for request in requests:
        if request.token_ids is None:
            matches.append(PrefixMatch.none())
            cached.append(0)
            continue
        match = cache.lookup(request.token_ids, request.cacheable_limit)
        matches.append(match)
        cached.append(_claim(unclaimed, request.token_ids, match.length))
    base = from_prefixes(
        [m.entry.layers if m.entry else None for m in matches], [m.length for m in matches], _template(model)
    )
    suffix_embeds, suffix_lengths = _suffix_inputs(model, requests, matches)
    with torch.inference_mode():
        batch, outputs = _run_chunks(model, base, suffix_embeds, suffix_lengths, (requests, matches))
    _remember_prompts(cache, requests, batch)
    return Prefilled(batch, outputs.last_logits, cached, outputs.prompt_logprobs)


def _claim(unclaimed: list[tuple[np.ndarray, int]], tokens: np.ndarray, matched: int) -> int:
    """Cached tokens to report for a prompt whose cache match is `matched` tokens long."""
    for index, (prefix, existed) in enumerate(unclaimed):
        if matched > existed and common_prefix_length(prefix, tokens) >= min(matched, len(prefix)):
            del unclaimed[index]  # this prompt pays for computing the prefix
            return existed
    return matched


def _template(model: LoadedModel) -> LayerKV:
    empty = torch.zeros(1, model.kv_heads, 0, model.head_dim, dtype=model.dtype, device=model.device)
    return (empty, empty)


def _suffix_inputs(
    model: LoadedModel, requests: list[EngineRequest], matches: list[PrefixMatch]
) -> tuple[torch.Tensor, list[int]]:
    """The not-yet-computed part of every row as embeddings, right-padded: [rows, longest, hidden]."""
    pieces: list[torch.Tensor] = []
    for request, match in zip(requests, matches, strict=True):
        if request.token_ids is not None:
            ids = torch.from_numpy(request.token_ids[match.length :].astype(np.int64))
            with torch.inference_mode():
                pieces.append(model.embed(ids))
        else:
            assert request.embeds is not None
            pieces.append(request.embeds.to(device=model.device, dtype=model.dtype))
    lengths = [int(p.shape[0]) for p in pieces]
    padded = torch.zeros(len(pieces), max(lengths), model.hidden_size, dtype=model.dtype, device=model.device)
    for i, piece in enumerate(pieces):
        padded[i, : lengths[i]] = piece
    return padded, lengths


@dataclass
class _Outputs:
    last_logits: torch.Tensor
    prompt_logprobs: list[list[float | None] | None]


def _run_chunks(
    model: LoadedModel,
    batch: KVBatch,
    embeds: torch.Tensor,
    lengths: list[int],
    scoring: tuple[list[EngineRequest], list[PrefixMatch]] | None,
) -> tuple[KVBatch, _Outputs]:
    rows, longest = embeds.shape[0], embeds.shape[1]
    lengths_t = torch.tensor(lengths, device=model.device)
    start_positions = batch.next_position.clone()
    last_hidden = torch.zeros(rows, model.hidden_size, dtype=model.dtype, device=model.device)
    logprobs: list[list[float | None] | None] = [None] * rows
    if scoring is not None:
        logprobs = [[None] * r.prompt_len if r.prompt_logprobs else None for r in scoring[0]]
    for begin in range(0, longest, CHUNK_TOKENS):
        end = min(begin + CHUNK_TOKENS, longest)
        offsets = torch.arange(begin, end, device=model.device)
        new_mask = (offsets.unsqueeze(0) < lengths_t.unsqueeze(1)).long()
        positions = start_positions.unsqueeze(1) + offsets.unsqueeze(0)
        with model.lock:
            hidden, batch = model.forward(batch, embeds[:, begin:end], new_mask, positions)
        for row, n in enumerate(lengths):
            if begin <= n - 1 < end:
                last_hidden[row] = hidden[row, n - 1 - begin]
        if scoring is not None:
            _score_chunk(model, hidden, begin, lengths, scoring, logprobs)
    with model.lock:
        last_logits = model.logits(last_hidden)
    return batch, _Outputs(last_logits, logprobs)


def _score_chunk(
    model: LoadedModel,
    hidden: torch.Tensor,
    begin: int,
    lengths: list[int],
    scoring: tuple[list[EngineRequest], list[PrefixMatch]],
    logprobs: list[list[float | None] | None],
) -> None:
    """Fill logprobs[row][t] = log p(token t | tokens before t) for the tokens this chunk predicts."""
    requests, matches = scoring
    for row, request in enumerate(requests):
        target = logprobs[row]
        if target is None or request.token_ids is None:
            continue
        offset = matches[row].length  # absolute index of this row's first computed token
        # hidden at absolute position p predicts token p + 1; only tokens >= logprob_start are wanted
        first = max(begin, max(request.logprob_start, 1) - 1 - offset)
        last = min(begin + hidden.shape[1], lengths[row] - 1)  # the last prompt token predicts nothing
        if first >= last:
            continue
        with model.lock:
            scores = torch.log_softmax(
                model.logits(hidden[row, first - begin : last - begin]).float(), dim=-1
            )
        targets = torch.from_numpy(request.token_ids[offset + first + 1 : offset + last + 1].astype(np.int64))
        picked = scores.gather(1, targets.to(scores.device).unsqueeze(1)).squeeze(1).tolist()
        for i, value in enumerate(picked):
            target[offset + first + 1 + i] = value


AUTO_CACHE_MIN_TOKENS = 64  # shorter prompts are cheaper to recompute than to keep


def _remember_prompts(cache: PrefixCache, requests: list[EngineRequest], batch: KVBatch) -> None:
    """Keep each long prompt's KV so a later request that starts the same way reuses it (radix-style)."""
    for row, request in enumerate(requests):
        ids = request.token_ids
        if ids is None or len(ids) < AUTO_CACHE_MIN_TOKENS or cache.covers(ids):
            continue
        cache.insert(ids, row_prefix(batch, row, len(ids)))
