"""A batch of KV caches laid out with holes, so rows of different lengths and origins share one forward.

Row i's real tokens sit at the columns where `mask[i]` is 1, in order; the other columns are holes
(zeros, masked out). Positions for RoPE come from each row's own count of real tokens, not from the
column, so a row whose prefix came from the prefix cache, a row prefilled from scratch and a row that
joined a running batch late all attend exactly as if they were alone (checked in tests/test_engine_kv.py).
Causality is by column, which keeps every row's own order because a row's tokens only ever move right.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

LayerKV = tuple[torch.Tensor, torch.Tensor]  # keys, values: [batch, kv_heads, columns, head_dim]


@dataclass
class KVBatch:
    layers: list[LayerKV]
    mask: torch.Tensor  # [batch, columns], int64, 1 where a real token sits
    next_position: torch.Tensor  # [batch], int64, the RoPE position of each row's next token

    @property
    def rows(self) -> int:
        return int(self.mask.shape[0])

    @property
    def columns(self) -> int:
        return int(self.mask.shape[1])

    def expand(self, rows: int) -> KVBatch:
        """A one-row batch seen as `rows` identical rows, without copying (a shared prefix for a batch)."""
        layers = [(k.expand(rows, -1, -1, -1), v.expand(rows, -1, -1, -1)) for k, v in self.layers]
        return KVBatch(layers, self.mask.expand(rows, -1), self.next_position.expand(rows))

    def nbytes(self) -> int:
        return sum(k.numel() * k.element_size() + v.numel() * v.element_size() for k, v in self.layers)


def empty_layers(
    num_layers: int, rows: int, kv_heads: int, head_dim: int, dtype: torch.dtype
) -> list[LayerKV]:
    shape = (rows, kv_heads, 0, head_dim)
    return [(torch.zeros(shape, dtype=dtype), torch.zeros(shape, dtype=dtype)) for _ in range(num_layers)]


def pad_columns(batch: KVBatch, columns: int) -> KVBatch:
    """Append masked hole columns on the right until the batch has `columns` columns."""
    extra = columns - batch.columns
    if extra <= 0:
        return batch
    layers = [(_pad_seq(k, extra), _pad_seq(v, extra)) for k, v in batch.layers]
    mask = torch.cat([batch.mask, batch.mask.new_zeros(batch.rows, extra)], dim=1)
    return KVBatch(layers, mask, batch.next_position)


def _pad_seq(tensor: torch.Tensor, extra: int) -> torch.Tensor:
    shape = list(tensor.shape)
    shape[2] = extra
    return torch.cat([tensor, tensor.new_zeros(shape)], dim=2)


def concat_rows(batches: list[KVBatch]) -> KVBatch:
    """Stack batches into one, padding the shorter ones with holes on the right."""
    if len(batches) == 1:
        return batches[0]
    width = max(b.columns for b in batches)
    padded = [pad_columns(b, width) for b in batches]
    layers = [
        (torch.cat([b.layers[i][0] for b in padded]), torch.cat([b.layers[i][1] for b in padded]))
        for i in range(len(padded[0].layers))
    ]
    mask = torch.cat([b.mask for b in padded])
    next_position = torch.cat([b.next_position for b in padded])
    return KVBatch(layers, mask, next_position)


def select_rows(batch: KVBatch, rows: list[int]) -> KVBatch:
    index = torch.tensor(rows, dtype=torch.long)
    layers = [(k.index_select(0, index), v.index_select(0, index)) for k, v in batch.layers]
    return KVBatch(layers, batch.mask.index_select(0, index), batch.next_position.index_select(0, index))


def drop_empty_columns(batch: KVBatch) -> KVBatch:
    """Remove columns that are holes in every row (left behind by rows that finished)."""
    used = batch.mask.any(dim=0)
    if bool(used.all()):
        return batch
    index = used.nonzero().flatten()
    layers = [(k.index_select(2, index), v.index_select(2, index)) for k, v in batch.layers]
    return KVBatch(layers, batch.mask.index_select(1, index), batch.next_position)


def row_prefix(batch: KVBatch, row: int, length: int) -> list[LayerKV]:
    """The first `length` real tokens of one row, as a contiguous single-row KV (for the prefix cache)."""
    columns = batch.mask[row].nonzero().flatten()[:length]
    return [
        (k[row : row + 1].index_select(2, columns).clone(), v[row : row + 1].index_select(2, columns).clone())
        for k, v in batch.layers
    ]


def from_prefixes(prefixes: list[list[LayerKV] | None], lengths: list[int], template: LayerKV) -> KVBatch:
    """A batch whose row i holds the first lengths[i] tokens of prefixes[i] (None or 0: an empty row)."""
    rows = len(prefixes)
    width = max(lengths, default=0)
    num_layers = len(next((p for p in prefixes if p is not None), [template]))
    key_t, _ = template
    shape = (rows, key_t.shape[1], width, key_t.shape[3])
    layers: list[LayerKV] = []
    for layer in range(num_layers):
        keys = key_t.new_zeros(shape)
        values = key_t.new_zeros(shape)
        for i, prefix in enumerate(prefixes):
            n = lengths[i]
            if prefix is None or n == 0:
                continue
            keys[i, :, :n] = prefix[layer][0][0, :, :n]
            values[i, :, :n] = prefix[layer][1][0, :, :n]
        layers.append((keys, values))
    mask = torch.zeros(rows, width, dtype=torch.long)
    for i, n in enumerate(lengths):
        mask[i, :n] = 1
    return KVBatch(layers, mask, torch.tensor(lengths, dtype=torch.long))
