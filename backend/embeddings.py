"""The sentence-embedding model (MiniLM by default), loaded once per process per folder and device. The
service that embeds with it (batching, caching, int8 queries) is `middleware.embeddings`."""

from __future__ import annotations

import functools
import os
from typing import Any

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
