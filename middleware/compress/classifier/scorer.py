"""`ClassifierScorer`: the Scorer seam served by a small trained encoder instead of a causal LM.

It predicts, for each wordpiece of a text, the self-information (nats) that the teacher (SmolLM2) gives
the word it belongs to when read after the request's prefix, and hands the scores back in the teacher's
own tokens (each SmolLM2 token takes the score of the wordpiece its first visible character is in), with
character spans. The compressor lands them on its units (words, protected spans) and applies its
structure rules exactly as it does for SmolLM2's scores, and a unit costs the same tokens as with SmolLM2:

    scorer = ClassifierScorer()                         # the shipped model, onnxruntime on the CPU
    [scores] = await scorer.score([ScoreRequest("The capital of France is Paris.")])
    scores.self_information, scores.spans               # [n] nats, [n, 2] character offsets

Every row of a call (all requests' windows) goes through the encoder in a few padded batches. On CUDA
the same int8 weights run in torch (bfloat16).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..scorer import ScoreRequest, TokenScores
from .card import (
    MODEL_FILE,
    TOKENIZER_FILE,
    ClassifierCard,
    ClassifierUnavailable,
    classifier_dir,
    read_card,
    vocabulary_sha256,
)
from .rows import RowEncoder, batches, scatter
from .runtime import OnnxRuntime, Runtime, TorchRuntime


class ClassifierScorer:
    name = "classifier"

    def __init__(
        self,
        folder: Path | None = None,
        *,
        device: str = "cpu",
        threads: int | None = None,
        max_rows: int | None = None,
        max_tokens: int | None = None,
        output_tokenizer: Any = None,
    ) -> None:
        """Loads the classifier in `folder` (default: PROMPTFOLD_CLASSIFIER, else the packaged one);
        raises `ClassifierUnavailable` with one sentence when it is missing or does not match its card.
        Scores come back in `output_tokenizer`'s tokens (an `HFTokenizer`; default: the packaged SmolLM2's),
        which must be the teacher's."""
        from tokenizers import Tokenizer

        from backend.tokenizer import packaged_tokenizer

        folder = folder or classifier_dir()
        self.folder = folder
        self.card: ClassifierCard = read_card(folder)
        self.output = output_tokenizer or packaged_tokenizer()
        check_teacher_tokenizer(self.card, self.output.hf, folder)
        tokenizer = Tokenizer.from_file(str(folder / TOKENIZER_FILE))
        tokenizer.no_truncation()
        tokenizer.no_padding()
        self.rows = RowEncoder(tokenizer, self.card.geometry)
        on_gpu = device.startswith("cuda")
        self.runtime: Runtime = (
            TorchRuntime(folder / MODEL_FILE, self.card, device)
            if on_gpu
            else OnnxRuntime(folder / MODEL_FILE, threads)
        )
        self.max_rows = max_rows or (256 if on_gpu else 16)
        self.max_tokens = max_tokens or (65536 if on_gpu else 4096)

    @property
    def teacher(self) -> str:
        """The model whose scores this classifier imitates (id and fingerprint)."""
        teacher = self.card.teacher
        return f"{teacher.get('model_id', '?')} ({str(teacher.get('fingerprint', '?'))[:12]})"

    def count_tokens(self, text: str) -> int:
        return int(self.output.count(text))

    async def score(self, requests: Sequence[ScoreRequest]) -> list[TokenScores]:
        return await asyncio.to_thread(self.score_sync, requests)

    def score_sync(self, requests: Sequence[ScoreRequest]) -> list[TokenScores]:
        """The same as `score`, in the calling thread."""
        texts = [r.text for r in requests]
        pieces = self.rows.encode_texts(texts)
        rows = self.rows.rows(pieces, [r.prefix for r in requests])
        values = [np.zeros(len(ids), dtype=np.float32) for ids, _ in pieces]
        for batch in batches(rows, self.max_rows, self.max_tokens):
            scatter(batch, self.runtime.run(batch.ids, batch.mask, batch.types), values)
        out = []
        for text, (_, spans), v, (ids, token_spans) in zip(
            texts, pieces, values, self.output.encode_many_with_offsets(texts), strict=True
        ):
            on_tokens = v[_covering(text, spans, token_spans)] if len(v) else np.zeros(len(ids), np.float32)
            out.append(TokenScores(ids, token_spans, np.maximum(on_tokens, 0.0)))  # never negative
        return out


def _covering(text: str, pieces: np.ndarray, tokens: np.ndarray) -> np.ndarray:
    """For each token span, the wordpiece its first visible character falls in (the one before it when
    that character has no wordpiece, such as a symbol the wordpiece tokenizer drops)."""
    visible = np.fromiter((not c.isspace() for c in text), dtype=bool, count=len(text))
    # next_visible[i]: the first visible position >= i (len(text) when none)
    positions = np.where(visible, np.arange(len(text)), len(text))
    next_visible = np.minimum.accumulate(np.append(positions, len(text))[::-1])[::-1]
    starts = tokens[:, 0]
    first = next_visible[np.minimum(starts, len(text))]
    key = np.where(first < tokens[:, 1], first, starts)
    return np.clip(np.searchsorted(pieces[:, 0], key, side="right") - 1, 0, len(pieces) - 1)


def check_teacher_tokenizer(card: ClassifierCard, tokenizer: Any, folder: Path) -> None:
    """The tokens scores are handed back in must be the teacher's, or unit costs would be wrong."""
    expected = card.teacher.get("tokenizer_sha256")
    found = vocabulary_sha256(tokenizer)
    if expected != found:
        raise ClassifierUnavailable(
            f"the classifier in {folder} was trained for the tokenizer of {card.teacher.get('model_id')} "
            f"(vocabulary {str(expected)[:12]}), and the one found here differs ({found[:12]})"
        )


@functools.lru_cache(maxsize=4)
def shared_classifier(folder: str | None = None, device: str = "cpu") -> ClassifierScorer:
    """One ClassifierScorer per folder and device in this process (loaded on first use)."""
    return ClassifierScorer(Path(folder) if folder else None, device=device)
