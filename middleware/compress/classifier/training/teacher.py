"""The teacher's scores and the targets the student learns from them.

The teacher is the causal LM the local scorer runs (SmolLM2 by default): every recorded request is scored
by `LocalScorer` (CUDA or CPU, packed forwards), then landed on the compressor's own units (`split_units`,
`assign_tokens`: words, protected spans) exactly as compression does. A unit's score (mean nats of its
tokens; the peak for numbers, URLs and IDs) becomes the target of each of its wordpieces, so the student's
scores land on the same units with the same values; each unit weighs 1 in the loss, however many
wordpieces it has.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...scorer import LocalScorer, ScoreRequest, TokenScores
from ...units import Unit, assign_tokens, split_units
from ..card import vocabulary_sha256
from ..rows import RowEncoder

CHUNK_REQUESTS = 256  # requests per teacher call (progress granularity; the scorer packs its forwards)


@dataclass
class Example:
    """One scoring request with its student wordpieces and what the teacher said about them."""

    prompt: int  # index of its training prompt
    request: ScoreRequest
    ids: np.ndarray  # [n] student wordpiece ids
    spans: np.ndarray  # [n, 2] their character offsets
    target: np.ndarray  # [n] float32, nats: the teacher's score of the unit each wordpiece is in
    weight: np.ndarray  # [n] float32: 1 / wordpieces of that unit
    units: list[Unit]  # the compressor's units of the text, with the teacher's token counts and scores


def teacher_scores(
    requests: Sequence[ScoreRequest],
    model: str | None,
    device: str,
    advance: Callable[[int], None] | None = None,
) -> tuple[list[TokenScores], dict[str, Any]]:
    """The teacher's TokenScores of every request, and what the teacher is (id, fingerprint, device)."""
    scorer = LocalScorer(model, device=device)
    out: list[TokenScores] = []
    for start in range(0, len(requests), CHUNK_REQUESTS):
        chunk = requests[start : start + CHUNK_REQUESTS]
        out.extend(scorer.score_sync(chunk))
        if advance is not None:
            advance(len(chunk))
    about = {
        "model_id": scorer.model_id,
        "fingerprint": fingerprint(scorer.loaded.model),
        "tokenizer": scorer.tokenizer.name,
        "tokenizer_sha256": vocabulary_sha256(scorer.tokenizer.hf),
        "dtype": str(next(scorer.loaded.model.parameters()).dtype).removeprefix("torch."),
        "scores": "self-information -log p(token | prefix, text before it), nats, landed on units",
    }
    return out, about


def fingerprint(model: Any) -> str:
    """sha256 of the teacher's embedding, first query projection and final norm weights (as stored): the
    same for the same weights whichever way the folder was made (the packaged GGUF converted here, or
    dequantized on another machine)."""
    import torch

    digest = hashlib.sha256()
    state = model.state_dict()
    for name in ("model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.weight", "model.norm.weight"):
        tensor = state[name].detach().contiguous().cpu()
        digest.update(name.encode())
        digest.update(tensor.view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def build_examples(
    prompts: Sequence[int],
    requests: Sequence[ScoreRequest],
    scores: Sequence[TokenScores],
    encoder: RowEncoder,
) -> list[Example]:
    """Examples for requests the teacher scored (texts with at least one token and one wordpiece)."""
    encoded = encoder.encode_texts([r.text for r in requests])
    examples = []
    for prompt, request, teacher, (ids, spans) in zip(prompts, requests, scores, encoded, strict=True):
        if len(teacher) == 0 or len(ids) == 0:
            continue
        units = split_units(request.text)
        assign_tokens(units, teacher.spans[:, 0], teacher.self_information.astype(np.float64))
        target, weight = unit_targets(units, spans[:, 0])
        examples.append(Example(prompt, request, ids, spans, target, weight, units))
    return examples


def unit_targets(units: list[Unit], starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per wordpiece (starting at `starts`): its unit's score, and 1 / the unit's wordpieces. A unit the
    teacher gave no token of its own (punctuation inside a neighbour's token) takes the score of the
    unit before it, which it follows when kept."""
    bounds = np.asarray([u.start for u in units], dtype=np.int64)
    owner = np.clip(np.searchsorted(bounds, starts, side="right") - 1, 0, len(units) - 1)
    scores = np.asarray([u.score for u in units], dtype=np.float32)
    has_tokens = np.asarray([u.tokens > 0 for u in units])
    if has_tokens.any():
        last = np.maximum.accumulate(np.where(has_tokens, np.arange(len(units)), -1))
        first_valid = int(np.argmax(has_tokens))
        scores = scores[np.where(last >= 0, last, first_valid)]
    counts = np.bincount(owner, minlength=len(units)).astype(np.float32)
    return scores[owner], (1.0 / counts[owner]).astype(np.float32)
