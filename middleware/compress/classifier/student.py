"""The student network: a BERT encoder (MiniLM, or a cut of its layers) and a linear regression head
that predicts, for every wordpiece, the teacher's self-information of the unit it belongs to, in nats.

Imports torch: used by training, export and the CUDA runtime, never by the CPU (onnxruntime) path.
"""

from __future__ import annotations

from typing import Any

import torch


class TokenRegressor(torch.nn.Module):
    """`forward(input_ids, attention_mask, token_type_ids) -> [batch, tokens]` self-information (nats)."""

    def __init__(self, encoder: Any) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = torch.nn.Linear(encoder.config.hidden_size, 1)

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor
    ) -> torch.Tensor:
        hidden = self.encoder(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        ).last_hidden_state
        return self.head(hidden).squeeze(-1)


def from_config(config: dict[str, Any]) -> TokenRegressor:
    """A student with random weights from a BertConfig dict (to load trained weights into)."""
    from transformers import BertConfig, BertModel

    encoder = BertModel(BertConfig(**config), add_pooling_layer=False)
    return TokenRegressor(encoder)


def from_pretrained(folder: str, layers: int | None = None) -> TokenRegressor:
    """A student from a sentence-transformers / HF BERT folder (MiniLM), float32, keeping `layers` of its
    layers spread evenly from the first to the last (all when None)."""
    from transformers import BertModel
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # a sentence-transformers folder holds a pooler we do not load
    encoder = BertModel.from_pretrained(
        folder, add_pooling_layer=False, dtype=torch.float32, local_files_only=True
    )
    total = encoder.config.num_hidden_layers
    if layers is not None and layers < total:
        keep = sorted({round(i * (total - 1) / max(layers - 1, 1)) for i in range(layers)})
        encoder.encoder.layer = torch.nn.ModuleList(encoder.encoder.layer[i] for i in keep)
        encoder.config.num_hidden_layers = len(keep)
    return TokenRegressor(encoder)


def encoder_config(model: TokenRegressor) -> dict[str, Any]:
    """The BertConfig fields that rebuild this student's encoder."""
    config = model.encoder.config.to_dict()
    keys = (
        "vocab_size",
        "hidden_size",
        "num_hidden_layers",
        "num_attention_heads",
        "intermediate_size",
        "hidden_act",
        "max_position_embeddings",
        "type_vocab_size",
        "layer_norm_eps",
        "pad_token_id",
        "position_embedding_type",
    )
    return {k: config[k] for k in keys if k in config}
