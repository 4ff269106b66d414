"""Which weights a gist belongs to: a fingerprint of the model's tensors, and the serving model's own
embedding table (the tokens after a gist enter the model as its own embeddings).

Gists are soft tokens in one model's embedding space; they mean nothing to other weights. The
fingerprint hashes every tensor of the model folder's safetensors files (name, dtype, shape, bytes, in
name order), so two folders with the same weights agree whatever their file layout, and a fine-tuned or
re-quantized model does not.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backend import Backend

from .errors import GistUnusable

_CHUNK = 1 << 24
_EMBED_NAMES = ("embed_tokens.weight", "wte.weight", "word_embeddings.weight", "embed_in.weight")


def model_fingerprint(folder: str | Path) -> str:
    """sha256 (hex) of the weights in `folder` (about 0.4 s for SmolLM2-135M; cached per process)."""
    path = Path(folder)
    files = sorted(path.glob("*.safetensors"))
    if not files:
        raise GistUnusable(f"the model folder '{path}' holds no safetensors weights to fingerprint")
    stamp = tuple((f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in files)
    return _fingerprint(str(path), stamp)


@functools.lru_cache(maxsize=8)
def _fingerprint(folder: str, stamp: tuple[tuple[str, int, int], ...]) -> str:
    tensors: list[tuple[str, Path, int, dict[str, Any]]] = []
    for name, _, _ in stamp:
        file = Path(folder) / name
        header, data_start = _safetensors_header(file)
        tensors += [(key, file, data_start, entry) for key, entry in header.items() if key != "__metadata__"]
    digest = hashlib.sha256()
    for key, file, data_start, entry in sorted(tensors, key=lambda t: t[0]):
        begin, end = entry["data_offsets"]
        digest.update(json.dumps([key, entry["dtype"], entry["shape"]]).encode())
        with file.open("rb") as handle:
            handle.seek(data_start + begin)
            left = end - begin
            while left:
                block = handle.read(min(left, _CHUNK))
                if not block:
                    raise GistUnusable(f"the weights file '{file}' is truncated")
                digest.update(block)
                left -= len(block)
    return digest.hexdigest()


def _safetensors_header(file: Path) -> tuple[dict[str, Any], int]:
    with file.open("rb") as handle:
        (size,) = struct.unpack("<Q", handle.read(8))
        return json.loads(handle.read(size)), 8 + size


@dataclass
class ServingModel:
    """The model a backend serves, as far as gists care: its id, fingerprint and embedding table."""

    model_id: str
    folder: Path
    fingerprint: str
    embedding: Any  # torch.nn.Embedding or a [vocab, hidden] tensor
    hidden_size: int

    def embed(self, token_ids: Sequence[int]) -> Any:
        """The model's own input embeddings of `token_ids`, [tokens, hidden], in the table's dtype."""
        import torch

        table = self.embedding.weight if hasattr(self.embedding, "weight") else self.embedding
        with torch.no_grad():
            index = torch.as_tensor(list(token_ids), dtype=torch.long, device=table.device)
            return table.index_select(0, index)

    def gist_prompt(self, vectors: Any, rest_ids: Sequence[int]) -> Any:
        """A prompt whose prefix is replaced by the gist: [k + len(rest), hidden] input embeddings, the
        gist vectors followed by the model's own embeddings of the rest of the prompt."""
        import torch

        rest = self.embed(rest_ids)
        return torch.cat([vectors.to(device=rest.device, dtype=rest.dtype), rest], dim=0)


async def serving_model(backend: Backend) -> ServingModel:
    """The backend's model with its weights found on this machine; raises GistUnusable with the reason.

    The embedded engine has them in memory; an SGLang server running here has them in its model folder
    (its server info names it). Other backends keep their weights out of reach.
    """
    weights = await backend.model_weights()
    if weights is None:
        raise GistUnusable(
            f"gists need the serving model's weights: the {backend.name} backend's weights are not on this machine"
        )
    fingerprint = await asyncio.to_thread(model_fingerprint, weights.folder)
    if weights.loaded is not None:
        loaded = weights.loaded
        return ServingModel(
            backend.model_id, weights.folder, fingerprint, loaded.embedding, loaded.hidden_size
        )
    table = await asyncio.to_thread(_load_embedding_table, str(weights.folder))
    return ServingModel(backend.model_id, weights.folder, fingerprint, table, int(table.shape[1]))


@functools.lru_cache(maxsize=2)
def _load_embedding_table(folder: str) -> Any:
    """Only the input embedding table of a model folder (56 MB for SmolLM2), as stored."""
    from safetensors import safe_open

    for file in sorted(Path(folder).glob("*.safetensors")):
        with safe_open(str(file), framework="pt") as weights:
            for key in weights.keys():  # noqa: SIM118 (safe_open is not a mapping)
                if key.endswith(_EMBED_NAMES):
                    return weights.get_tensor(key)
    raise GistUnusable(f"no input embedding table found in '{folder}'")
