"""All corpora of one data folder (`Settings.data_dir / "corpora"`): create, open (cached), list, drop."""

from __future__ import annotations

import functools
import re
import threading
from pathlib import Path

from .chunking import ChunkingConfig
from .corpus import Corpus
from .errors import CorpusExists, InvalidInput, UnknownCorpus
from .store import CorpusDir

# Safe on every filesystem and in a URL path: 1-64 ASCII letters, digits, '_', '-' or '.', starting with a
# letter or digit (hidden folders are the store's temporaries) and not ending with '.'. Matched whole
# (`fullmatch`: a `$` would let a trailing newline through, and a folder `pwn4\n` was once made that way).
_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,62}[A-Za-z0-9_-])?")


def valid_name(name: str) -> bool:
    return isinstance(name, str) and _NAME.fullmatch(name) is not None


def check_name(name: str) -> str:
    if not valid_name(name):
        raise InvalidInput(
            f"Invalid corpus name {shown(name)}: use 1-64 letters, digits, '_', '-' or '.', starting with a "
            "letter or digit and not ending with '.'.",
            param="name",
        )
    return name


def shown(value: str, limit: int = 80) -> str:
    """`value` as a message quotes it: repr'd (control characters visible), cut to `limit` characters."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 5]}...'"


class Corpora:
    """The corpora under `root`. Opened corpora are cached; each notices writes by other processes."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._open: dict[str, Corpus] = {}
        self._lock = threading.Lock()

    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(
            p.name for p in self.root.iterdir() if valid_name(p.name) and CorpusDir(p, p.name).exists()
        )

    def exists(self, name: str) -> bool:
        return CorpusDir(self.root / check_name(name), name).exists()

    def create(
        self, name: str, *, embedding_model: str | None = None, chunking: ChunkingConfig | None = None
    ) -> Corpus:
        check_name(name)
        if self.exists(name):
            raise CorpusExists(f"The corpus '{name}' already exists.", param="name")
        self.root.mkdir(parents=True, exist_ok=True)
        corpus = Corpus.create(self.root / name, name, embedding_model=embedding_model, chunking=chunking)
        with self._lock:
            self._open[name] = corpus
        return corpus

    def get(self, name: str) -> Corpus:
        """The corpus `name` (UnknownCorpus if there is none)."""
        check_name(name)
        with self._lock:
            corpus = self._open.get(name)
            if corpus is not None and corpus.directory.exists():
                return corpus
            self._open.pop(name, None)
            directory = CorpusDir(self.root / name, name)
            if not directory.exists():
                known = ", ".join(self.names()) or "none yet"
                raise UnknownCorpus(f"The corpus '{name}' does not exist (corpora: {known}).", param="corpus")
            corpus = Corpus(directory)
            self._open[name] = corpus
            return corpus

    def get_or_create(self, name: str) -> tuple[Corpus, bool]:
        """The corpus `name`, created with default settings if missing; the flag says whether it was."""
        try:
            return self.get(name), False
        except UnknownCorpus:
            try:
                return self.create(name), True
            except CorpusExists:  # another process created it in between
                return self.get(name), False

    def drop(self, name: str) -> None:
        check_name(name)
        directory = CorpusDir(self.root / name, name)
        if not directory.exists():
            raise UnknownCorpus(f"The corpus '{name}' does not exist.", param="corpus")
        directory.drop()
        with self._lock:
            self._open.pop(name, None)


@functools.cache
def corpora_at(root: Path) -> Corpora:
    """One catalog per folder for the whole process (the chat stage and the routes share it)."""
    return Corpora(root)


def corpora_for(data_dir: Path) -> Corpora:
    return corpora_at(Path(data_dir).expanduser().resolve() / "corpora")
