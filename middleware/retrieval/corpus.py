"""A persistent corpus: documents cut into chunks, embedded into FAISS and indexed by BM25, searched
by both and fused by reciprocal rank.

Document ids are unique within a corpus; adding a document whose id is already there replaces it
(its old chunks are deleted in the same generation), so re-running an ingest is idempotent.
Documents are chunked and embedded before the writer lock is taken, so a long ingest blocks other
writers only for the final merge and publish.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..embeddings import Embedder, shared_embedder
from ..tokens import TokenCounter
from .chunking import ChunkingConfig, chunk_text
from .errors import IncompatibleCorpus, InvalidInput, UnknownDocument
from .fusion import DENSE_WEIGHT, LEXICAL_WEIGHT, RRF_K, maximal_marginal_relevance, reciprocal_rank_fusion
from .lexical import LexicalIndex
from .store import CorpusDir, Snapshot, StoredChunk
from .vectors import VectorIndex

MAX_DOCUMENT_ID_CHARS = 512


def document_id_problem(document_id: str) -> str | None:
    """Why `document_id` cannot name a document (None: it can).

    An id travels in a URL path (`DELETE /v1/corpora/NAME/documents/ID`, slashes allowed: the CLI uses
    file paths), so it must survive the normalisation every standard client applies to a path: no `.` or
    `..` segment (a client turns `documents/..` into the corpus itself; a DELETE of it once dropped a
    whole corpus), no empty segment but a leading '/', no backslash (WHATWG URLs read it as `/`), no
    control characters and no surrounding whitespace. 1 to 512 characters.
    """
    if not document_id or not document_id.strip():
        return "the id is empty"
    if len(document_id) > MAX_DOCUMENT_ID_CHARS:
        return f"at most {MAX_DOCUMENT_ID_CHARS} characters"
    if any(ord(ch) < 32 or 127 <= ord(ch) < 160 or 0xD800 <= ord(ch) < 0xE000 for ch in document_id):
        return "control characters and lone surrogates are not allowed"
    if document_id != document_id.strip():
        return "no leading or trailing whitespace"
    if "\\" in document_id:
        return "no backslash ('\\')"
    segments = document_id.removeprefix("/").split("/")  # an absolute file path (the CLI's ids) is fine
    if any(segment in ("", ".", "..") for segment in segments):
        return "no '.' or '..' path segment and no empty one (no trailing or double '/')"
    return None


@dataclass(frozen=True)
class DocumentInput:
    """A document to add: `id` unique in the corpus, `source` where it came from (defaults to the id),
    `title` indexed with every chunk (helps chunks after the first)."""

    id: str
    text: str
    source: str | None = None
    title: str | None = None


@dataclass(frozen=True)
class Passage:
    """A retrieved chunk. `score` is the fused reciprocal-rank score (higher = more relevant);
    `dense_rank`/`lexical_rank` are its 1-based ranks in each retriever (None: not in its top list)."""

    chunk_id: int
    document_id: str
    source: str
    title: str
    start: int
    end: int
    text: str
    tokens: int
    score: float
    dense_rank: int | None = None
    lexical_rank: int | None = None

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["score"] = round(self.score, 6)
        return data


@dataclass(frozen=True)
class SearchConfig:
    """How deep each retriever looks (`candidates`), how their lists are fused, and optional MMR
    (`mmr_lambda` in [0, 1]: 1 = pure relevance, lower = more diversity; None = off)."""

    candidates: int = 50
    rrf_k: float = RRF_K
    dense_weight: float = DENSE_WEIGHT
    lexical_weight: float = LEXICAL_WEIGHT
    mmr_lambda: float | None = None
    mode: str = "hybrid"  # hybrid | dense | lexical (the last two for benchmarks and debugging)


@dataclass
class AddResult:
    added: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    chunks: int = 0
    tokens: int = 0
    generation: int = 0


@dataclass(frozen=True)
class _View:
    """What searches read: one generation with its BM25 index and lookups. Never mutated."""

    snapshot: Snapshot
    lexical: LexicalIndex
    position: dict[int, int]  # chunk id -> position in snapshot.chunks

    @classmethod
    def of(cls, snapshot: Snapshot) -> _View:
        lexical = LexicalIndex([c.indexed_text() for c in snapshot.chunks])
        return cls(snapshot, lexical, {c.id: i for i, c in enumerate(snapshot.chunks)})


class Corpus:
    """A named corpus in a folder. Open with `Corpus.open` / `Corpus.create`; safe to share across
    threads (searches read an immutable view; writes are serialized by the store's lock)."""

    def __init__(self, directory: CorpusDir, embedder: Embedder | None = None) -> None:
        self.directory = directory
        self.name = directory.name
        snapshot = directory.load()
        self.embedder = embedder or shared_embedder(snapshot.manifest.get("embedding_model_arg"))
        if self.embedder.name != snapshot.manifest["embedding_model"]:
            raise IncompatibleCorpus(
                f"The corpus '{self.name}' was embedded with {snapshot.manifest['embedding_model']}, "
                f"not {self.embedder.name}."
            )
        self._view = _View.of(snapshot)
        self._swap = threading.Lock()

    # --- opening ------------------------------------------------------------------------------------

    @classmethod
    def open(cls, path: Path, name: str, embedder: Embedder | None = None) -> Corpus:
        return cls(CorpusDir(path, name), embedder)

    @classmethod
    def create(
        cls,
        path: Path,
        name: str,
        *,
        embedding_model: str | None = None,
        chunking: ChunkingConfig | None = None,
        embedder: Embedder | None = None,
    ) -> Corpus:
        embedder = embedder or shared_embedder(embedding_model)
        chunking = chunking or ChunkingConfig()
        manifest = {
            "name": name,
            "embedding_model": embedder.name,
            "embedding_model_arg": embedding_model,
            "dim": embedder.dim,
            "chunking": asdict(chunking),
            "next_id": 0,
            "created_at": time.time(),
        }
        snapshot = Snapshot(0, manifest, [], VectorIndex(embedder.dim))
        return cls(CorpusDir.create(path, name, snapshot), embedder)

    # --- reading ------------------------------------------------------------------------------------

    @property
    def chunking(self) -> ChunkingConfig:
        return ChunkingConfig(**self._fresh().snapshot.manifest["chunking"])

    def info(self) -> dict[str, Any]:
        view = self._fresh()
        manifest = view.snapshot.manifest
        return {
            "name": self.name,
            "documents": len({c.document_id for c in view.snapshot.chunks}),
            "chunks": len(view.snapshot.chunks),
            "tokens": sum(c.tokens for c in view.snapshot.chunks),
            "embedding_model": manifest["embedding_model"],
            "index": view.snapshot.index.kind,
            "chunking": manifest["chunking"],
            "generation": view.snapshot.generation,
            "updated_at": manifest.get("updated_at"),
        }

    def footprint(self) -> dict[str, int]:
        """Bytes held in memory by the vector index, the BM25 index and the chunk texts."""
        view = self._fresh()
        return {
            "vector_index_bytes": view.snapshot.index.nbytes,
            "lexical_index_bytes": view.lexical.nbytes,
            "chunk_text_bytes": sum(len(c.text.encode()) for c in view.snapshot.chunks),
        }

    def documents(self) -> list[dict[str, Any]]:
        """One entry per document: id, source, title, chunk count, tokens, characters covered."""
        entries: dict[str, dict[str, Any]] = {}
        for chunk in self._fresh().snapshot.chunks:
            entry = entries.setdefault(
                chunk.document_id,
                {
                    "id": chunk.document_id,
                    "source": chunk.source,
                    "title": chunk.title,
                    "chunks": 0,
                    "tokens": 0,
                    "chars": 0,
                },
            )
            entry["chunks"] += 1
            entry["tokens"] += chunk.tokens
            entry["chars"] = max(entry["chars"], chunk.end)
        return list(entries.values())

    def search(self, query: str, k: int = 5, config: SearchConfig | None = None) -> list[Passage]:
        """The `k` best passages for `query`, best first (fewer when the corpus has fewer)."""
        config = config or SearchConfig()
        query = query.strip()
        if not query:
            raise InvalidInput("The query is empty.", param="q")
        if k < 1:
            raise InvalidInput("k must be at least 1.", param="k")
        view = self._fresh()
        chunks = view.snapshot.chunks
        if not chunks:
            return []
        depth = max(config.candidates, k)
        rankings: list[list[int]] = []
        weights: list[float] = []
        query_vector = None
        if config.mode in ("hybrid", "dense"):
            query_vector = self.embedder.embed_query(query)
            _, ids = view.snapshot.index.search(query_vector, depth)
            rankings.append([view.position[int(i)] for i in ids[0] if i >= 0])
            weights.append(config.dense_weight)
        if config.mode in ("hybrid", "lexical"):
            rankings.append([position for position, _ in view.lexical.search(query, depth)])
            weights.append(config.lexical_weight)
        fused = reciprocal_rank_fusion(rankings, weights, k=config.rrf_k)
        if config.mmr_lambda is not None and len(fused) > k:
            pool = fused[: max(4 * k, 20)]
            ids = np.array([chunks[p].id for p, _ in pool], dtype=np.int64)
            order = maximal_marginal_relevance(
                view.snapshot.index.vectors(ids), [s for _, s in pool], config.mmr_lambda, k
            )
            fused = [pool[i] for i in order]
        ranks = [{p: r for r, p in enumerate(ranking, start=1)} for ranking in rankings]
        dense_ranks = ranks[0] if config.mode in ("hybrid", "dense") else {}
        lexical_ranks = ranks[-1] if config.mode in ("hybrid", "lexical") else {}
        return [
            _passage(chunks[p], score, dense_ranks.get(p), lexical_ranks.get(p)) for p, score in fused[:k]
        ]

    # --- writing ------------------------------------------------------------------------------------

    def add(
        self, documents: Sequence[DocumentInput], count: TokenCounter, *, timeout_s: float = 60
    ) -> AddResult:
        """Chunk, embed and add `documents`; a document whose id exists replaces the old one."""
        _check_documents(documents)
        chunking = self.chunking
        pieces = [
            chunk
            for document in documents
            for chunk in chunk_text(
                document.text,
                document_id=document.id,
                source=document.source or document.id,
                count=count,
                config=chunking,
            )
        ]
        titles = {d.id: d.title or "" for d in documents}
        texts = [f"{titles[c.document_id]}\n{c.text}" if titles[c.document_id] else c.text for c in pieces]
        vectors = self.embedder.embed(texts)
        with self.directory.writer_lock(timeout_s):
            snapshot = self.directory.load()  # the latest, whoever wrote it
            existing = {c.document_id for c in snapshot.chunks}
            incoming = {d.id for d in documents}
            result = AddResult(
                added=[d.id for d in documents if d.id not in existing],
                replaced=[d.id for d in documents if d.id in existing],
            )
            stale = [c.id for c in snapshot.chunks if c.document_id in incoming]
            snapshot.index.remove(np.array(stale, dtype=np.int64))
            kept = [c for c in snapshot.chunks if c.document_id not in incoming]
            first_id = int(snapshot.manifest["next_id"])
            fresh = [
                StoredChunk(
                    first_id + i,
                    c.document_id,
                    c.source,
                    c.index,
                    c.start,
                    c.end,
                    c.tokens,
                    c.text,
                    titles[c.document_id],
                )
                for i, c in enumerate(pieces)
            ]
            snapshot.index.add(np.array([c.id for c in fresh], dtype=np.int64), vectors)
            snapshot.chunks = kept + fresh
            snapshot.manifest["next_id"] = first_id + len(fresh)
            result.generation = self.directory.publish(snapshot)
            result.chunks = len(fresh)
            result.tokens = sum(c.tokens for c in fresh)
            self._install(snapshot)
        return result

    def delete(self, document_ids: Sequence[str], *, timeout_s: float = 60) -> list[str]:
        """Remove documents by id; all must exist (else UnknownDocument and nothing changes)."""
        wanted = set(document_ids)
        with self.directory.writer_lock(timeout_s):
            snapshot = self.directory.load()
            missing = wanted - {c.document_id for c in snapshot.chunks}
            if missing:
                raise UnknownDocument(
                    f"The corpus '{self.name}' has no document {', '.join(repr(m) for m in sorted(missing))}.",
                    param="document_id",
                )
            snapshot.index.remove(
                np.array([c.id for c in snapshot.chunks if c.document_id in wanted], dtype=np.int64)
            )
            snapshot.chunks = [c for c in snapshot.chunks if c.document_id not in wanted]
            self.directory.publish(snapshot)
            self._install(snapshot)
        return sorted(wanted)

    # --- views --------------------------------------------------------------------------------------

    def _fresh(self) -> _View:
        """The latest published generation (another process may have written since we last looked)."""
        view = self._view
        if self.directory.current_generation() != view.snapshot.generation:
            with self._swap:
                if self.directory.current_generation() != self._view.snapshot.generation:
                    self._view = _View.of(self.directory.load())
                view = self._view
        return view

    def _install(self, snapshot: Snapshot) -> None:
        with self._swap:
            self._view = _View.of(snapshot)


def _passage(chunk: StoredChunk, score: float, dense_rank: int | None, lexical_rank: int | None) -> Passage:
    return Passage(
        chunk.id,
        chunk.document_id,
        chunk.source,
        chunk.title,
        chunk.start,
        chunk.end,
        chunk.text,
        chunk.tokens,
        score,
        dense_rank,
        lexical_rank,
    )


def _check_documents(documents: Sequence[DocumentInput]) -> None:
    if not documents:
        raise InvalidInput("No documents given.", param="documents")
    seen: set[str] = set()
    for position, document in enumerate(documents):
        where = f"documents[{position}]"
        problem = document_id_problem(document.id)
        if problem is not None:
            raise InvalidInput(f"Invalid '{where}.id': {problem}.", param=f"{where}.id")
        if document.id in seen:
            raise InvalidInput(
                f"The document id '{document.id}' appears twice in one request.", param=f"{where}.id"
            )
        seen.add(document.id)
        if not document.text.strip():
            raise InvalidInput(f"The document '{document.id}' has no text.", param=f"{where}.text")
