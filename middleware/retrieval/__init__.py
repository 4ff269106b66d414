"""Retrieval: pick the passages relevant to a question, from a stored corpus or from the prompt itself.

    chunking.py   documents -> sentence-aligned chunks under a token budget, with overlap and offsets
    (embeddings come from the shared service, `middleware.embeddings`)
    lexical.py    BM25 (bm25s)                 vectors.py   FAISS: exact inner product, HNSW when large
    fusion.py     reciprocal rank fusion, MMR, selection under a token budget
    store.py      a corpus on disk: atomic generations, single-writer lock
    corpus.py     add / delete / search one corpus      catalog.py   the corpora of a data folder
    ranker.py     HybridRanker.rank(question, passages): hybrid ranking with no index (in-prompt use)
    documents.py  `Document [i](Title: ...)` blocks inside a prompt
    stage.py      the pipeline stage      options.py   request options   (HTTP: server/routes/corpora.py)

Heavy libraries (torch, faiss, bm25s) are imported only when used.
"""

from .chunking import Chunk, ChunkingConfig, chunk_text, sentence_spans
from .corpus import Corpus, DocumentInput, Passage, SearchConfig
from .errors import RetrievalError
from .ranker import HybridRanker

__all__ = [
    "Chunk",
    "ChunkingConfig",
    "Corpus",
    "DocumentInput",
    "HybridRanker",
    "Passage",
    "RetrievalError",
    "SearchConfig",
    "chunk_text",
    "sentence_spans",
]
