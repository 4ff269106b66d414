"""The dense index: FAISS inner product over unit vectors (= cosine similarity), ids are chunk ids.

Which FAISS index, and why:
- Up to `EXACT_MAX_VECTORS` (20,000) vectors: `IndexFlatIP`, exact, with true deletes. Its cost is one
  pass over the vectors per query (n x 384 multiply-adds); measured for a top-100 query on one core of
  the shared 2-core box: 0.09 ms at 2,600 vectors (the bench corpus), 7 ms at 50k, 18 ms at 150k. At
  20k it stays under ~3 ms, leaving the 10 ms query budget to the query embedding.
- Past it: `IndexHNSWFlat` (M=32, efSearch=128), whose cost grows about logarithmically, at ~0.99
  recall@10 on sentence embeddings. We chose it over
  IVF because it needs no training: corpora here grow by adds, and IVF centroids trained on the first
  documents go stale (and need a retrain and a full rewrite) as the corpus drifts. HNSW cannot delete a
  vector, so deletes are tombstones excluded at search time (an IDSelector) and the graph is rebuilt
  from the live vectors once tombstones pass a fifth of the index.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np

EXACT_MAX_VECTORS = 20_000
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 128
TOMBSTONE_REBUILD_RATIO = 0.2

IndexKind = Literal["flat-ip", "hnsw-ip"]


class VectorIndex:
    """Unit vectors keyed by int64 ids; `search` gives (scores, ids), best first, id -1 padding."""

    def __init__(self, dim: int, kind: IndexKind = "flat-ip", *, exact_max: int = EXACT_MAX_VECTORS) -> None:
        self.dim = dim
        self.kind: IndexKind = kind
        self.exact_max = exact_max
        self.tombstones: set[int] = set()
        self._index = _new_index(dim, kind)

    def __len__(self) -> int:
        """Live vectors (tombstoned ones excluded)."""
        return int(self._index.ntotal) - len(self.tombstones)

    @property
    def nbytes(self) -> int:
        """Size of the serialized index in bytes (what it costs on disk and, about, in memory)."""
        import faiss

        return int(faiss.serialize_index(self._index).nbytes)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if self.kind == "flat-ip" and len(self) + len(ids) > self.exact_max:
            self._rebuild("hnsw-ip")
        self._index.add_with_ids(vectors, ids)

    def remove(self, ids: np.ndarray) -> None:
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if not len(ids):
            return
        if self.kind == "flat-ip":
            self._index.remove_ids(ids)
            return
        self.tombstones.update(int(i) for i in ids)
        if len(self.tombstones) > TOMBSTONE_REBUILD_RATIO * self._index.ntotal:
            self._rebuild("hnsw-ip" if len(self) > self.exact_max else "flat-ip")

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        """The stored vectors of `ids` [len(ids), dim] (for MMR)."""
        if not len(ids):
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self._index.reconstruct(int(i)) for i in ids])

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top `k` by inner product for each query row: (scores [q, k], ids [q, k]); missing ids are -1."""
        import faiss

        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        k = max(1, min(k, len(self))) if len(self) else 1
        if not len(self):
            return np.full((len(queries), 1), -np.inf, np.float32), np.full((len(queries), 1), -1, np.int64)
        params: Any = None
        if self.kind == "hnsw-ip":
            hnsw_params: Any = faiss.SearchParametersHNSW  # type: ignore[attr-defined]
            params = hnsw_params(efSearch=max(HNSW_EF_SEARCH, k))
            if self.tombstones:
                params.sel = faiss.IDSelectorNot(
                    faiss.IDSelectorBatch(np.fromiter(self.tombstones, dtype=np.int64))
                )
        scores, ids = self._index.search(queries, k, params=params)
        return scores, ids

    def save(self, path: Path) -> None:
        import faiss

        faiss.write_index(self._index, str(path))

    @classmethod
    def load(
        cls, path: Path, kind: IndexKind, tombstones: set[int], *, exact_max: int = EXACT_MAX_VECTORS
    ) -> VectorIndex:
        import faiss

        index = faiss.read_index(str(path))
        loaded = cls(index.d, kind, exact_max=exact_max)
        loaded._index = index
        loaded.tombstones = set(tombstones)
        return loaded

    def _live_ids(self) -> np.ndarray:
        import faiss

        all_ids = faiss.vector_to_array(self._index.id_map).astype(np.int64)
        return np.array([i for i in all_ids if int(i) not in self.tombstones], dtype=np.int64)

    def _rebuild(self, kind: IndexKind) -> None:
        ids = self._live_ids()
        vectors = self.vectors(ids)
        self.kind = kind
        self.tombstones = set()
        self._index = _new_index(self.dim, kind)
        if len(ids):
            self._index.add_with_ids(vectors, ids)


def _new_index(dim: int, kind: IndexKind) -> Any:
    import faiss

    inner: Any
    if kind == "flat-ip":
        inner = faiss.IndexFlatIP(dim)
    else:
        inner = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        inner.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        inner.hnsw.efSearch = HNSW_EF_SEARCH
    return faiss.IndexIDMap2(inner)
