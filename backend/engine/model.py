"""Loading a causal LM once per process, and the one forward call every engine step goes through."""

from __future__ import annotations

import functools
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .kv import KVBatch, LayerKV


@dataclass
class LoadedModel:
    """A transformers causal LM with its tokenizer and the facts the engine needs about its shape."""

    model: Any
    tokenizer: Any
    path: Path
    device: torch.device
    dtype: torch.dtype
    num_layers: int
    kv_heads: int
    head_dim: int
    hidden_size: int
    max_positions: int
    stop_token_ids: frozenset[int]
    pad_token_id: int
    # One forward at a time per model: the engine thread and a scorer may share it.
    lock: threading.Lock

    @property
    def embedding(self) -> torch.nn.Embedding:
        return self.model.get_input_embeddings()

    @property
    def vocab_size(self) -> int:
        """Width of the logits (may exceed the tokenizer's words when the embedding is padded)."""
        return int(self.model.lm_head.weight.shape[0])

    def embed(self, token_ids: torch.Tensor) -> torch.Tensor:
        return self.embedding(token_ids.to(self.device))

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.model.lm_head(hidden)

    def empty_kv(self, rows: int) -> KVBatch:
        shape = (rows, self.kv_heads, 0, self.head_dim)
        layers = [
            (torch.zeros(shape, dtype=self.dtype, device=self.device),) * 2 for _ in range(self.num_layers)
        ]
        return KVBatch(
            [(k, v) for k, v in layers],
            torch.zeros(rows, 0, dtype=torch.long, device=self.device),
            torch.zeros(rows, dtype=torch.long, device=self.device),
        )

    def forward(
        self, batch: KVBatch, inputs_embeds: torch.Tensor, new_mask: torch.Tensor, positions: torch.Tensor
    ) -> tuple[torch.Tensor, KVBatch]:
        """Run `inputs_embeds` ([rows, n, hidden]) on top of `batch`.

        `new_mask` ([rows, n]) marks which new columns are real; `positions` ([rows, n]) are their RoPE
        positions. Returns the last hidden states [rows, n, hidden] and the batch grown by n columns.
        """
        mask = torch.cat([batch.mask, new_mask.to(batch.mask.device)], dim=1)
        cache = _as_dynamic_cache(batch.layers)
        out = self.model.model(
            inputs_embeds=inputs_embeds,
            attention_mask=mask,
            position_ids=positions,
            past_key_values=cache,
            use_cache=True,
        )
        layers = [(layer.keys, layer.values) for layer in out.past_key_values.layers]
        grown = KVBatch(layers, mask, batch.next_position + new_mask.sum(dim=1).to(batch.next_position))
        return out.last_hidden_state, grown


def _as_dynamic_cache(layers: list[LayerKV]) -> Any:
    """A DynamicCache that wraps our tensors without copying them (the constructor would concatenate)."""
    from transformers import DynamicCache
    from transformers.cache_utils import DynamicLayer

    cache = DynamicCache()
    cache.layers = []
    for keys, values in layers:
        layer = DynamicLayer()
        layer.dtype, layer.device = keys.dtype, keys.device
        layer.keys, layer.values = keys, values
        layer.is_initialized = True
        cache.layers.append(layer)
    return cache


def default_dtype(device: torch.device) -> torch.dtype:
    # bf16 prefills ~2x faster than fp32 on AVX-512-BF16 CPUs and halves the KV cache; CUDA likes it too.
    return torch.bfloat16


@functools.lru_cache(maxsize=4)
def load_causal_lm(path: str, device: str = "cpu", dtype_name: str = "auto") -> LoadedModel:
    """Load once per (path, device, dtype) and share: the engine, scorers and gist training all use this."""
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    from ..tokenizer import load_hf_tokenizer

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    torch_device = torch.device(device)
    if torch_device.type == "cpu":
        torch.set_num_threads(int(os.environ.get("PROMPTFOLD_THREADS", os.cpu_count() or 1)))
    dtype = default_dtype(torch_device) if dtype_name == "auto" else getattr(torch, dtype_name)
    try:
        tokenizer = load_hf_tokenizer(path)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype).to(torch_device).eval()
    except Exception as error:  # a broken folder: one sentence for the user, not a traceback
        from ..models import ModelNotFound

        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ModelNotFound(f"the model folder '{path}' could not be loaded: {reason}") from error
    model.requires_grad_(False)
    config = model.config
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    stop_ids = {tid for tid in _as_list(config.eos_token_id) if tid is not None}
    if tokenizer.eos_token_id is not None:
        stop_ids.add(tokenizer.eos_token_id)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else min(stop_ids, default=0)
    return LoadedModel(
        model=model,
        tokenizer=tokenizer,
        path=Path(path),
        device=torch_device,
        dtype=dtype,
        num_layers=config.num_hidden_layers,
        kv_heads=getattr(config, "num_key_value_heads", config.num_attention_heads),
        head_dim=head_dim,
        hidden_size=config.hidden_size,
        max_positions=getattr(config, "max_position_embeddings", 2048),
        stop_token_ids=frozenset(stop_ids),
        pad_token_id=int(pad),
        lock=threading.Lock(),
    )


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]
