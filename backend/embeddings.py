"""Sentence embeddings (MiniLM by default), loaded once per process and shared by every stage that
needs them: retrieval, the organize router, coarse passage ranking."""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from .models import resolve_embedder


@functools.lru_cache(maxsize=2)
def load_sentence_embedder(name_or_path: str | None = None, device: str = "cpu") -> Any:
    """A sentence-transformers model from a local folder (the packaged MiniLM when None)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for a hub at run time
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    ref = resolve_embedder(name_or_path)
    return SentenceTransformer(str(ref.path), device=device)


def embed_texts(
    texts: Sequence[str], *, model: str | None = None, batch_size: int = 64, device: str = "cpu"
) -> np.ndarray:
    """Unit-length float32 embeddings, one row per text (inner product = cosine similarity)."""
    if not texts:
        return np.zeros((0, embedding_dim(model, device)), dtype=np.float32)
    encoder = load_sentence_embedder(model, device)
    vectors = encoder.encode(
        list(texts), batch_size=batch_size, normalize_embeddings=True, show_progress_bar=False
    )
    return np.asarray(vectors, dtype=np.float32)


def embedding_dim(model: str | None = None, device: str = "cpu") -> int:
    encoder = load_sentence_embedder(model, device)
    getter = getattr(encoder, "get_embedding_dimension", None) or encoder.get_sentence_embedding_dimension
    return int(getter())
