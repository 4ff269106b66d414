"""The one sentence-embedding service (MiniLM by default): retrieval, the passage rankers of compression
and the organize router all embed through `shared_embedder(model, device)`. The model itself is loaded by
`backend.embeddings.load_sentence_embedder` (once per process)."""

from .embedder import Embedder, QueryPrecision, shared_embedder

__all__ = ["Embedder", "QueryPrecision", "shared_embedder"]
