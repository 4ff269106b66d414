"""The gist store: one safetensors file (the vectors and the prefix token ids) and one JSON file (what the
gist is, for which model, how well it stands in for its prefix) per gist, in one folder.

A gist's id is made of its prefix hash, its model's fingerprint and k, so training the same prefix for
the same model with the same k again replaces the old gist:

    g-<prefix hash, 12 hex>-<model fingerprint, 8 hex>-k<k>
"""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from .errors import GistNotFound, WrongModel
from .prefix import Role

# Matched whole (`fullmatch`: a `$` lets a trailing newline through) and bounded (k has at most 6 digits),
# so an id is always a short, safe file name.
_ID = re.compile(r"g-[0-9a-f]{12}-[0-9a-f]{8}-k[1-9][0-9]{0,5}")
FORMAT = "promptfold-gist/1"


class GistEval(BaseModel):
    """How well a gist stands in for its prefix on held-out queries (teacher-forced on the model's own
    answers to prefix + query, and on whole greedy answers)."""

    queries: int = Field(description="held-out queries")
    answer_positions: int = Field(description="answer tokens compared")
    kl: float = Field(description="mean KL(full prefix || gist) over answer tokens, nats")
    next_token_agreement: float = Field(description="share of answer tokens with the same argmax")
    all_positions_agreement: float = Field(description="the same over query and answer tokens")
    all_positions_kl: float = Field(description="mean KL over query and answer tokens, nats")
    answers_equal: float | None = Field(None, description="share of greedy answers that are identical")
    answer_tokens: int | None = Field(None, description="greedy answers were compared up to this length")


class GistRecord(BaseModel):
    """The JSON metadata of a gist (`GET /v1/gists` lists these)."""

    id: str
    object: str = "gist"
    format: str = FORMAT
    model_id: str
    model_hash: str = Field(description="sha256 of the model's weights (see model.model_fingerprint)")
    prefix_hash: str = Field(description="sha256 of the prefix token ids")
    prefix_text_hash: str
    prefix_role: Role
    prefix_text: str
    prefix_tokens: int
    tokens: int = Field(description="k, the number of gist vectors")
    hidden_size: int
    loss: float | None = Field(None, description="best held-out training loss (top-k KL, nats/token)")
    eval: GistEval | None = None
    training: dict[str, Any] = Field(default_factory=dict)
    created: str = Field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    @property
    def compression(self) -> float:
        """How many times fewer prompt tokens the prefix takes as a gist."""
        return self.prefix_tokens / self.tokens

    def check_model(self, model_hash: str, model_id: str) -> None:
        if model_hash != self.model_hash:
            raise WrongModel(
                f"gist {self.id} was trained for model {self.model_id} (weights {self.model_hash[:12]}), "
                f"not for {model_id} (weights {model_hash[:12]}); train one for this model"
            )


@dataclass
class Gist:
    record: GistRecord
    vectors: Any  # torch.Tensor [k, hidden], float32
    prefix_ids: list[int]


def gist_id(prefix_hash: str, model_hash: str, k: int) -> str:
    return f"g-{prefix_hash[:12]}-{model_hash[:8]}-k{k}"


class GistStore:
    """Gists in `root` (by default `Settings.data_dir / "gists"`). Safe to share between threads."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self._lock = threading.Lock()
        self._loaded: dict[str, tuple[int, Gist]] = {}  # id -> (mtime of its JSON, gist)
        self._listing: tuple[int, list[GistRecord]] | None = None  # (mtime of the folder, records)

    def save(self, gist: Gist) -> GistRecord:
        """Write a gist (replacing one with the same id) and return its record."""
        from safetensors.torch import save_file

        record = gist.record
        self.root.mkdir(parents=True, exist_ok=True)
        import torch

        tensors = {
            "gist": gist.vectors.detach().to("cpu", torch.float32).contiguous(),
            "prefix_ids": torch.tensor(gist.prefix_ids, dtype=torch.int64),
        }
        weights, meta = self._paths(record.id)
        with self._lock:
            save_file(tensors, str(weights) + ".tmp", metadata={"format": FORMAT, "id": record.id})
            os.replace(str(weights) + ".tmp", weights)
            meta.with_suffix(".tmp").write_text(record.model_dump_json(indent=2))
            os.replace(meta.with_suffix(".tmp"), meta)
        return record

    def records(self) -> list[GistRecord]:
        """Every gist's metadata, newest first; unreadable files are skipped. Cheap to call per request:
        the listing is read again only when the folder changed (saves and deletes rename files in it)."""
        try:
            stamp = self.root.stat().st_mtime_ns
        except FileNotFoundError:
            return []
        listing = self._listing
        if listing is not None and listing[0] == stamp:
            return list(listing[1])
        found = []
        for meta in self.root.glob("g-*.json"):
            try:
                found.append(GistRecord.model_validate_json(meta.read_text()))
            except (OSError, ValueError):
                continue
        found.sort(key=lambda r: (r.created, r.id), reverse=True)
        self._listing = (stamp, found)
        return list(found)

    def record(self, id: str) -> GistRecord:
        _, meta = self._paths(id)
        try:
            return GistRecord.model_validate_json(meta.read_text())
        except FileNotFoundError:
            raise GistNotFound(f"no gist '{id}'") from None  # never the data path: clients see this

    def load(self, id: str) -> Gist:
        """The gist with its vectors (cached until its files change)."""
        from safetensors.torch import load_file

        weights, meta = self._paths(id)
        try:
            mtime = meta.stat().st_mtime_ns
        except FileNotFoundError:
            raise GistNotFound(f"no gist '{id}'") from None  # never the data path: clients see this
        with self._lock:
            cached = self._loaded.get(id)
            if cached and cached[0] == mtime:
                return cached[1]
        record = self.record(id)
        tensors = load_file(str(weights))
        gist = Gist(record, tensors["gist"], [int(t) for t in tensors["prefix_ids"].tolist()])
        with self._lock:
            self._loaded[id] = (mtime, gist)
        return gist

    def delete(self, id: str) -> GistRecord:
        record = self.record(id)
        weights, meta = self._paths(id)
        with self._lock:
            meta.unlink(missing_ok=True)
            weights.unlink(missing_ok=True)
            self._loaded.pop(id, None)
        return record

    def _paths(self, id: str) -> tuple[Path, Path]:
        if not isinstance(id, str) or _ID.fullmatch(id) is None:
            raise GistNotFound(f"no gist {_shown(id)}: gist ids look like g-0123456789ab-01234567-k16")
        return self.root / f"{id}.safetensors", self.root / f"{id}.json"


def _shown(value: object, limit: int = 80) -> str:
    """`value` as an error message quotes it: repr'd (control characters visible), cut to `limit` characters."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 5]}...'"
