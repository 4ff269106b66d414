"""Choosing the next token of each row: greedy, or temperature plus nucleus (top-p), seeded per row,
after the row's logit rules (logits.py) where it has any.

Rows that use no rule take the same path as before the rules existed, so plain decoding costs no more.
A row whose logits are not usable (NaN, +inf, nothing left after masking) or whose draw fails gets an
exception in its slot instead of a token: the scheduler fails that row alone.
"""

from __future__ import annotations

import numpy as np
import torch

from ..base import SamplingParams
from .logits import RowRules, apply_rules, filter_for_sampling, uses_rules

Choice = int | BaseException  # a token id, or why this row could not get one


class UnusableLogits(RuntimeError):
    """A row's logits allow no valid draw (NaN, +inf, or every token masked)."""


def make_generator(seed: int | None) -> torch.Generator:
    generator = torch.Generator()
    if seed is None:
        generator.seed()
    else:
        generator.manual_seed(seed & 0xFFFF_FFFF_FFFF_FFFF)  # any int, never an overflow
    return generator


def choose_tokens(
    logits: torch.Tensor, rows: list[RowRules], generators: list[torch.Generator]
) -> list[Choice]:
    """One choice per row of `logits` ([rows, vocab]), each with its own parameters and generator."""
    logits = logits.float()
    # a row's sum is finite exactly when all its logits are (NaN and inf propagate); 20x cheaper than isfinite
    finite = torch.isfinite(logits.sum(dim=1)).tolist()
    choices: list[Choice] = [0] * len(rows)
    ruled: list[int] = []
    for i, row in enumerate(rows):
        if not finite[i]:
            choices[i] = UnusableLogits("the model's logits for this row are not finite")
        elif uses_rules(row.sampling):
            ruled.append(i)
        else:
            choices[i] = _plain(logits[i], row.sampling, generators[i])
    if ruled:
        _with_rules(logits, ruled, rows, generators, choices)
    return choices


def sample_rows(
    logits: torch.Tensor, params: list[SamplingParams], generators: list[torch.Generator]
) -> list[int]:
    """Greedy / temperature + top-p for rows without other rules; raises if a row cannot be sampled."""
    chosen = [_plain(logits[i].float(), p, generators[i]) for i, p in enumerate(params)]
    for choice in chosen:
        if isinstance(choice, BaseException):
            raise choice
    return [int(c) for c in chosen]  # type: ignore[arg-type]


def _plain(logits: torch.Tensor, sampling: SamplingParams, generator: torch.Generator) -> Choice:
    if sampling.greedy:
        return int(logits.argmax())
    try:
        probs = torch.softmax(logits / sampling.temperature, dim=-1)
        if sampling.top_p < 1.0:
            probs = _nucleus(probs, sampling.top_p)
        return int(torch.multinomial(probs, 1, generator=generator))
    except Exception as error:  # e.g. a temperature so small the softmax is NaN
        return UnusableLogits(f"sampling failed: {error}")


def _with_rules(
    logits: torch.Tensor,
    which: list[int],
    rows: list[RowRules],
    generators: list[torch.Generator],
    choices: list[Choice],
) -> None:
    """Rules for the rows in `which`, all together; if that fails, row by row, so one bad row fails alone."""
    bitmasks: list[np.ndarray | None] = []
    ready: list[int] = []
    for i in which:
        try:
            bitmasks.append(rows[i].grammar.bitmask() if rows[i].grammar is not None else None)
            ready.append(i)
        except Exception as error:
            choices[i] = error
    if not ready:
        return
    try:
        part = logits.index_select(0, torch.tensor(ready))
        apply_rules(part, [rows[i] for i in ready], bitmasks)
        for k, choice in enumerate(
            _pick(part, [rows[i].sampling for i in ready], [generators[i] for i in ready])
        ):
            choices[ready[k]] = choice
    except Exception as error:
        if len(ready) == 1:
            choices[ready[0]] = error
            return
        for i in ready:
            _with_rules(logits, [i], rows, generators, choices)


def _pick(
    logits: torch.Tensor, params: list[SamplingParams], generators: list[torch.Generator]
) -> list[Choice]:
    """Tokens for rows whose rules are applied: argmax for greedy rows, a filtered draw for the others."""
    choices: list[Choice] = [0] * len(params)
    # the row max is finite unless a logit is NaN or +inf, or every one is -inf (all masked)
    usable = torch.isfinite(logits.amax(dim=1))
    sampled = [k for k, p in enumerate(params) if not p.greedy]
    filtered = filter_for_sampling(logits[sampled], [params[k] for k in sampled]) if sampled else None
    slot = {k: n for n, k in enumerate(sampled)}
    for k, p in enumerate(params):
        if not bool(usable[k]):
            choices[k] = UnusableLogits("no token is left after this row's masks and penalties")
        elif p.greedy:
            choices[k] = int(logits[k].argmax())
        else:
            assert filtered is not None
            choices[k] = _draw(filtered[slot[k]], p, generators[k])
    return choices


def _draw(logits: torch.Tensor, sampling: SamplingParams, generator: torch.Generator) -> Choice:
    try:
        if not bool(torch.isfinite(logits.amax())):
            return UnusableLogits("the scaled logits are not finite (temperature too small?)")
        probs = torch.softmax(logits, dim=-1)
        if sampling.top_p < 1.0:
            probs = _nucleus(probs, sampling.top_p)
        return int(torch.multinomial(probs, 1, generator=generator))
    except Exception as error:
        return UnusableLogits(f"sampling failed: {error}")


def _nucleus(probs: torch.Tensor, top_p: float) -> torch.Tensor:
    sorted_probs, order = probs.sort(descending=True)
    before = sorted_probs.cumsum(0) - sorted_probs  # mass of the tokens ranked above each one
    sorted_probs[before >= top_p] = 0.0  # the top token always survives (before == 0)
    kept = torch.zeros_like(probs).scatter(0, order, sorted_probs)
    return kept / kept.sum()
