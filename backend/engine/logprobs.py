"""Per-token logprobs of generated tokens, with the best alternatives at each position."""

from __future__ import annotations

from typing import Any

import torch

from ..base import TokenLogprob, TopLogprob


def token_logprobs(
    logits: torch.Tensor, rows: list[int], tokens: list[int], top_n: list[int], tokenizer: Any
) -> list[TokenLogprob]:
    """The logprob of `tokens[k]` at row `rows[k]` of `logits` ([rows, vocab]), with its `top_n[k]` best
    alternatives (most likely first).

    Values are the log-softmax of the model's raw logits, before temperature, penalties, logit_bias and
    grammar masks (vLLM's default, "raw logprobs"): they say what the model thought, not how the token
    was drawn, so a greedy and a sampled answer report the same numbers for the same token.
    """
    if not rows:
        return []
    scores = torch.log_softmax(logits.index_select(0, torch.tensor(rows)).float(), dim=-1)
    chosen = scores.gather(1, torch.tensor(tokens).unsqueeze(1)).squeeze(1).tolist()
    widest = max(top_n)
    top_values, top_ids = scores.topk(widest, dim=1) if widest else (None, None)
    entries = []
    for k, token in enumerate(tokens):
        top: list[TopLogprob] = []
        if top_n[k]:
            assert top_values is not None and top_ids is not None
            top = [
                TopLogprob(int(t), _text(tokenizer, int(t)), float(v))
                for t, v in zip(
                    top_ids[k, : top_n[k]].tolist(), top_values[k, : top_n[k]].tolist(), strict=True
                )
            ]
        entries.append(TokenLogprob(token, _text(tokenizer, token), float(chosen[k]), top))
    return entries


def _text(tokenizer: Any, token: int) -> str:
    return str(tokenizer.decode([token], skip_special_tokens=False))
