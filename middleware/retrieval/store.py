"""A corpus on disk: immutable generations published by an atomic pointer switch, one writer at a time.

    NAME/
      corpus.lock        writers hold an exclusive flock on it for a whole read-modify-publish
      CURRENT            the name of the live generation, e.g. "g000012" (replaced atomically)
      g000012/           manifest.json, chunks.jsonl (text, source, offsets), index.faiss
      g000011/           the previous generation, kept so that a reader loading it is not cut off

Publishing writes a new generation into a hidden temporary folder, fsyncs its files, renames the folder
into place, then replaces CURRENT (write aside, fsync, rename, fsync the folder). A crash anywhere before
that last rename leaves CURRENT naming the previous generation, whole; leftovers are removed by the next
writer. Readers take no lock: a generation never changes once published.

Concurrency rule: any number of readers (a serving process, the CLI's search); one writer at a time per
corpus, enforced by the lock file across processes and threads (a server adding documents while the CLI
adds more simply queue up; a writer that waits longer than its timeout gets CorpusBusy).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .errors import CorpusBusy, CorpusExists, IncompatibleCorpus, UnknownCorpus
from .vectors import VectorIndex

FORMAT_VERSION = 1
CURRENT = "CURRENT"
LOCK = "corpus.lock"
MANIFEST = "manifest.json"
CHUNKS = "chunks.jsonl"
INDEX = "index.faiss"
KEEP_GENERATIONS = 2  # the live one and the one before it


@dataclass(frozen=True)
class StoredChunk:
    """A chunk as kept on disk: `id` is its FAISS id; `start`/`end` are offsets in its document's text."""

    id: int
    document_id: str
    source: str
    index: int
    start: int
    end: int
    tokens: int
    text: str
    title: str = ""

    def indexed_text(self) -> str:
        """What BM25 and the embedder see: the document title (if any) on top of the chunk."""
        return f"{self.title}\n{self.text}" if self.title else self.text


@dataclass
class Snapshot:
    """One published generation, loaded: its manifest, live chunks and vector index."""

    generation: int
    manifest: dict[str, Any]
    chunks: list[StoredChunk]
    index: VectorIndex


class CorpusDir:
    def __init__(self, path: Path, name: str) -> None:
        self.path = path
        self.name = name

    def exists(self) -> bool:
        return (self.path / CURRENT).is_file()

    def current_generation(self) -> int | None:
        try:
            return _generation_number((self.path / CURRENT).read_text().strip())
        except FileNotFoundError:
            return None

    def load(self) -> Snapshot:
        """The live generation. A writer may publish (and prune) while we read: then read the new one."""
        for _ in range(5):
            generation = self.current_generation()
            if generation is None:
                raise UnknownCorpus(f"The corpus '{self.name}' does not exist.", param="corpus")
            try:
                return self._load(generation)
            except FileNotFoundError:
                continue
        raise CorpusBusy(f"The corpus '{self.name}' changed too often while being read; try again.")

    def _load(self, generation: int) -> Snapshot:
        folder = self.path / _generation_name(generation)
        manifest = json.loads((folder / MANIFEST).read_text())
        if manifest.get("format") != FORMAT_VERSION:
            raise IncompatibleCorpus(
                f"The corpus '{self.name}' was written in format {manifest.get('format')}; "
                f"this version reads format {FORMAT_VERSION}."
            )
        with (folder / CHUNKS).open(encoding="utf-8") as lines:
            chunks = [StoredChunk(**json.loads(line)) for line in lines if line.strip()]
        index = VectorIndex.load(folder / INDEX, manifest["index_kind"], set(manifest.get("tombstones", [])))
        return Snapshot(generation, manifest, chunks, index)

    def publish(self, snapshot: Snapshot) -> int:
        """Write `snapshot` as the next generation and make it live; returns its number. Hold the lock."""
        generation = (self.current_generation() or 0) + 1
        final = self.path / _generation_name(generation)
        work = self.path / f".{final.name}.{uuid.uuid4().hex[:8]}.partial"
        work.mkdir()
        try:
            manifest = {
                **snapshot.manifest,
                "format": FORMAT_VERSION,
                "generation": generation,
                "index_kind": snapshot.index.kind,
                "tombstones": sorted(snapshot.index.tombstones),
                "chunks": len(snapshot.chunks),
                "updated_at": time.time(),
            }
            snapshot.index.save(work / INDEX)
            _write_lines(work / CHUNKS, (json.dumps(asdict(c), ensure_ascii=False) for c in snapshot.chunks))
            _write_lines(work / MANIFEST, [json.dumps(manifest, indent=1)])
            _fsync_path(work / INDEX)
            _fsync_path(work)
            if final.exists():  # left by a writer that died between the rename and the switch
                shutil.rmtree(final)
            work.rename(final)
            _fsync_path(self.path)
            _replace_text(self.path / CURRENT, final.name + "\n")
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
        snapshot.generation, snapshot.manifest = generation, manifest
        self._prune(generation)
        return generation

    @contextlib.contextmanager
    def writer_lock(self, timeout_s: float = 60.0) -> Iterator[None]:
        """Hold the corpus's single-writer lock (blocking up to `timeout_s`, then CorpusBusy)."""
        with (self.path / LOCK).open("a") as handle:
            deadline = time.monotonic() + timeout_s
            while True:
                try:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise CorpusBusy(
                            f"Another writer has held the corpus '{self.name}' for over {timeout_s:.0f} s; "
                            "try again when it is done."
                        ) from None
                    time.sleep(0.05)
            try:
                if not self.exists():  # dropped while we waited
                    raise UnknownCorpus(f"The corpus '{self.name}' does not exist.", param="corpus")
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    @classmethod
    def create(cls, path: Path, name: str, snapshot: Snapshot) -> CorpusDir:
        """Make a new corpus folder holding `snapshot` as generation 1, atomically (all or nothing)."""
        work = path.parent / f".{name}.{uuid.uuid4().hex[:8]}.creating"
        work.mkdir(parents=True)
        try:
            (work / LOCK).touch()
            cls(work, name).publish(snapshot)
            try:
                os.rename(work, path)  # fails if the name is taken (a non-empty folder)
            except OSError as error:
                raise CorpusExists(f"The corpus '{name}' already exists.", param="name") from error
            _fsync_path(path.parent)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return cls(path, name)

    def drop(self) -> None:
        """Remove the corpus: renamed aside at once (readers see it gone), then deleted."""
        with self.writer_lock():
            grave = self.path.parent / f".{self.name}.{uuid.uuid4().hex[:8]}.dropped"
            os.rename(self.path, grave)
        shutil.rmtree(grave, ignore_errors=True)

    def _prune(self, live: int) -> None:
        for entry in self.path.iterdir():
            if entry.name.endswith(".partial") or entry.name.startswith(f".{CURRENT}."):
                shutil.rmtree(entry, ignore_errors=True)
                continue
            number = _generation_number(entry.name)
            if number is not None and number <= live - KEEP_GENERATIONS:
                shutil.rmtree(entry, ignore_errors=True)


def _generation_name(number: int) -> str:
    return f"g{number:06d}"


def _generation_number(name: str) -> int | None:
    if len(name) == 7 and name[0] == "g" and name[1:].isdigit():
        return int(name[1:])
    return None


def _write_lines(path: Path, lines: Any) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for line in lines:
            handle.write(line)
            handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())


def _replace_text(path: Path, text: str) -> None:
    aside = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}")
    _write_lines(aside, [text.rstrip("\n")])
    os.replace(aside, path)
    _fsync_path(path.parent)


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
