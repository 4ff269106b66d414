"""Per-row logit rules, applied to all the rows of a step that use them at once.

The order is vLLM's: hard masks first (grammar, then EOS/stop ids held back by `min_tokens` or
`ignore_eos`), then `logit_bias`, then the penalties; greedy rows take the argmax of that, sampled rows
go on to `filter_for_sampling` (temperature, top-k, min-p). Top-p and the draw itself stay per row,
since each row has its own generator.

Penalties, as in vLLM and the OpenAI API: `repetition_penalty` r divides a positive logit by r and
multiplies a negative one by r for every token seen in the prompt or the answer so far;
`frequency_penalty` f subtracts f * (times the token appeared in the answer); `presence_penalty` p
subtracts p once for any token that appeared in the answer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..base import SamplingParams
from .grammar import RowGrammar, apply_bitmasks


class TokenHistory:
    """What a row's penalties need: how often each token appeared in its answer, and its prompt's tokens."""

    def __init__(self, vocab: int, prompt_ids: np.ndarray | None) -> None:
        self.counts = torch.zeros(vocab)
        self.in_prompt = torch.zeros(vocab, dtype=torch.bool)
        if prompt_ids is not None and len(prompt_ids):
            ids = torch.from_numpy(prompt_ids.astype(np.int64))
            self.in_prompt[ids[(ids >= 0) & (ids < vocab)]] = True

    def add(self, token: int) -> None:
        if 0 <= token < self.counts.shape[0]:
            self.counts[token] += 1


@dataclass
class RowRules:
    """One row's view for the logit rules: its parameters and where it stands."""

    sampling: SamplingParams
    eos_ids: frozenset[int]
    generated: int = 0
    history: TokenHistory | None = None
    grammar: RowGrammar | None = None

    @property
    def penalised(self) -> bool:
        s = self.sampling
        return s.frequency_penalty != 0 or s.presence_penalty != 0 or s.repetition_penalty != 1


def uses_rules(sampling: SamplingParams) -> bool:
    """Whether a row needs anything beyond plain greedy / temperature + top-p (the fast path)."""
    s = sampling
    return bool(
        s.frequency_penalty
        or s.presence_penalty
        or s.repetition_penalty != 1
        or s.logit_bias
        or s.top_k not in (None, -1, 0)
        or s.min_p
        or s.min_tokens
        or s.ignore_eos
        or s.constraint is not None
    )


def apply_rules(logits: torch.Tensor, rows: list[RowRules], bitmasks: list[np.ndarray | None]) -> None:
    """Apply masks, logit_bias and penalties in place to `logits` ([len(rows), vocab], float32).

    `bitmasks[i]` is row i's grammar mask for this step (None: unconstrained), computed by the caller so
    that a failing matcher fails its row alone.
    """
    _grammar_masks(logits, bitmasks)
    _held_back(logits, rows)
    _logit_bias(logits, rows)
    _penalties(logits, rows)


def _grammar_masks(logits: torch.Tensor, bitmasks: list[np.ndarray | None]) -> None:
    which = [i for i, mask in enumerate(bitmasks) if mask is not None]
    if not which:
        return
    masks = torch.from_numpy(np.stack([bitmasks[i] for i in which]))  # type: ignore[misc]
    index = torch.tensor(which)
    part = logits.index_select(0, index)
    apply_bitmasks(part, masks)
    logits.index_copy_(0, index, part)


def _held_back(logits: torch.Tensor, rows: list[RowRules]) -> None:
    """EOS and stop_token_ids are masked until min_tokens; EOS always with ignore_eos. A constrained
    row is exempt: its grammar alone decides when the answer may end."""
    row_ids: list[int] = []
    token_ids: list[int] = []
    vocab = logits.shape[1]
    for i, r in enumerate(rows):
        if r.grammar is not None:
            continue
        banned: set[int] = set()
        if r.generated < r.sampling.min_tokens:
            banned |= r.eos_ids | set(r.sampling.stop_token_ids)
        elif r.sampling.ignore_eos:
            banned |= r.eos_ids
        for token in banned:
            if token < vocab:
                row_ids.append(i)
                token_ids.append(token)
    if row_ids:
        logits[torch.tensor(row_ids), torch.tensor(token_ids)] = float("-inf")


def _logit_bias(logits: torch.Tensor, rows: list[RowRules]) -> None:
    row_ids: list[int] = []
    token_ids: list[int] = []
    biases: list[float] = []
    vocab = logits.shape[1]
    for i, r in enumerate(rows):
        for token, bias in r.sampling.logit_bias.items():
            if not 0 <= token < vocab:  # refused up front (local.py); never index past the row
                continue
            row_ids.append(i)
            token_ids.append(token)
            biases.append(float(bias))
    if row_ids:
        logits.index_put_(
            (torch.tensor(row_ids), torch.tensor(token_ids)), torch.tensor(biases), accumulate=True
        )


def _penalties(logits: torch.Tensor, rows: list[RowRules]) -> None:
    which = [i for i, r in enumerate(rows) if r.penalised and r.history is not None]
    if not which:
        return
    index = torch.tensor(which)
    part = logits.index_select(0, index)
    histories = [rows[i].history for i in which]
    counts = torch.stack([h.counts for h in histories if h is not None])
    seen = counts > 0
    params = [rows[i].sampling for i in which]
    repetition = torch.tensor([p.repetition_penalty for p in params]).unsqueeze(1)
    in_prompt = torch.stack([h.in_prompt for h in histories if h is not None])
    repeated = seen | in_prompt
    part = torch.where(repeated, torch.where(part > 0, part / repetition, part * repetition), part)
    part -= torch.tensor([p.frequency_penalty for p in params]).unsqueeze(1) * counts
    part -= torch.tensor([p.presence_penalty for p in params]).unsqueeze(1) * seen
    logits.index_copy_(0, index, part)


def filter_for_sampling(logits: torch.Tensor, params: list[SamplingParams]) -> torch.Tensor:
    """Temperature, then top-k and min-p, for rows that sample ([len(params), vocab], float32)."""
    temperature = torch.tensor([p.temperature for p in params]).unsqueeze(1)
    logits = logits / temperature
    top_k = [p.top_k if p.top_k and p.top_k > 0 else 0 for p in params]
    if any(top_k):
        vocab = logits.shape[1]
        k = torch.tensor([min(t, vocab) if t else vocab for t in top_k])
        ranked = logits.sort(dim=1, descending=True).values
        threshold = ranked.gather(1, (k - 1).unsqueeze(1))
        logits = logits.masked_fill(logits < threshold, float("-inf"))
    if any(p.min_p for p in params):
        probs = torch.softmax(logits, dim=1)
        floor = torch.tensor([p.min_p for p in params]).unsqueeze(1) * probs.max(dim=1, keepdim=True).values
        logits = logits.masked_fill(probs < floor, float("-inf"))
    return logits
