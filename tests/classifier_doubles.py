"""A tiny student (2 layers, 32 wide, MiniLM's vocabulary and tokenizer) exported as a classifier, for
tests that need the files and the runtime but not a trained model."""

from __future__ import annotations

import shutil
from pathlib import Path


def teacher() -> dict[str, str]:
    """The card's teacher: SmolLM2, whose tokenizer (the packaged one) scores come back in."""
    from backend.tokenizer import packaged_tokenizer
    from middleware.compress.classifier.card import vocabulary_sha256

    return {
        "model_id": "SmolLM2-135M-Instruct",
        "fingerprint": "0" * 64,
        "tokenizer_sha256": vocabulary_sha256(packaged_tokenizer().hf),
    }


def tiny_student_folder(folder: Path) -> Path:
    """A random BERT of MiniLM's vocabulary, saved as a HF folder with MiniLM's tokenizer."""
    import torch
    from transformers import BertConfig, BertModel

    from backend.models import resolve_embedder

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
    )
    BertModel(config, add_pooling_layer=False).save_pretrained(folder)
    shutil.copyfile(resolve_embedder().path / "tokenizer.json", folder / "tokenizer.json")
    return folder


def tiny_classifier(folder: Path) -> Path:
    """`folder`/model: the tiny student exported as a classifier (int8 ONNX, tokenizer, card)."""
    import torch

    from middleware.compress.classifier import Geometry
    from middleware.compress.classifier.student import from_pretrained
    from middleware.compress.classifier.training.export import export

    student = tiny_student_folder(folder / "student")
    model = from_pretrained(str(student))
    with torch.no_grad():  # scores around 3 nats that vary with the token
        model.head.bias.fill_(3.0)
    torch.save(model.state_dict(), folder / "float.pt")  # to compare the int8 file with
    export(
        model,
        student / "tokenizer.json",
        folder / "model",
        geometry=Geometry(row_tokens=96, overlap=8, prefix_tokens=24),
        teacher=teacher(),
        student={"base": "tiny"},
        data={},
        training={},
    )
    return folder / "model"
