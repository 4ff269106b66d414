"""Choosing the next token of each row: greedy, or temperature plus nucleus (top-p), seeded per row."""

from __future__ import annotations

import torch

from ..base import SamplingParams


def make_generator(seed: int | None) -> torch.Generator:
    generator = torch.Generator()
    if seed is None:
        generator.seed()
    else:
        generator.manual_seed(seed)
    return generator


def sample_rows(
    logits: torch.Tensor, params: list[SamplingParams], generators: list[torch.Generator]
) -> list[int]:
    """One token per row of `logits` ([rows, vocab]), each row with its own parameters and generator."""
    logits = logits.float()
    chosen: list[int] = []
    for row, sampling in enumerate(params):
        if sampling.greedy:
            chosen.append(int(logits[row].argmax()))
            continue
        probs = torch.softmax(logits[row] / sampling.temperature, dim=-1)
        if sampling.top_p < 1.0:
            probs = _nucleus(probs, sampling.top_p)
        chosen.append(int(torch.multinomial(probs, 1, generator=generators[row])))
    return chosen


def _nucleus(probs: torch.Tensor, top_p: float) -> torch.Tensor:
    sorted_probs, order = probs.sort(descending=True)
    before = sorted_probs.cumsum(0) - sorted_probs  # mass of the tokens ranked above each one
    sorted_probs[before >= top_p] = 0.0  # the top token always survives (before == 0)
    kept = torch.zeros_like(probs).scatter(0, order, sorted_probs)
    return kept / kept.sum()
