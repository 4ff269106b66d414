"""Export a trained student as the shipped classifier: an int8 ONNX graph, its tokenizer, and its card.

The graph is exported in float32 (TorchScript exporter, opset 17, dynamic batch and length), then its
weights are quantized to int8 by onnxruntime's dynamic quantization, as the retrieval query encoder is
(`middleware/embeddings/onnx_query.py`): MiniLM's 22.7M parameters make about 23 MB. Which ONNX
initializer holds which torch parameter (found by value: the exporter renames and transposes linear
weights) goes into the card, so that the CUDA runtime can rebuild the network from the same file.
"""

from __future__ import annotations

import datetime
import json
import logging
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ..card import CARD_FILE, MODEL_FILE, TOKENIZER_FILE, ClassifierCard, Geometry, file_sha256
from ..student import TokenRegressor, encoder_config


def export(
    model: TokenRegressor,
    tokenizer_path: Path,
    folder: Path,
    *,
    geometry: Geometry,
    teacher: dict[str, Any],
    student: dict[str, Any],
    data: dict[str, Any],
    training: dict[str, Any],
    per_channel: bool = False,
) -> ClassifierCard:
    """Write MODEL_FILE, TOKENIZER_FILE and CARD_FILE into `folder`; returns the card."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    folder.mkdir(parents=True, exist_ok=True)
    model = model.float().cpu().eval()
    work = Path(tempfile.mkdtemp(prefix=".export-", dir=folder))
    try:
        float_path = work / "float32.onnx"
        _export_float(model, float_path)
        names = _initializer_names(float_path, {k: v.numpy() for k, v in model.state_dict().items()})
        logging.disable(logging.WARNING)  # the quantizer advises "pre-processing" on the root logger
        try:
            quantize_dynamic(
                str(float_path), str(work / MODEL_FILE), weight_type=QuantType.QInt8, per_channel=per_channel
            )
        finally:
            logging.disable(logging.NOTSET)
        (work / MODEL_FILE).replace(folder / MODEL_FILE)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    write_tokenizer(tokenizer_path, folder / TOKENIZER_FILE)
    card = ClassifierCard(
        model_sha256=file_sha256(folder / MODEL_FILE),
        tokenizer_sha256=file_sha256(folder / TOKENIZER_FILE),
        geometry=geometry,
        student={
            **student,
            "config": encoder_config(model),
            "onnx_names": names,
            "quantization": "int8 dynamic, " + ("per channel" if per_channel else "per tensor"),
            "parameters": sum(p.numel() for p in model.parameters()),
        },
        teacher=teacher,
        data=data,
        training=training,
        created=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    )
    (folder / CARD_FILE).write_text(card.to_json(), encoding="utf-8")
    return card


def _export_float(model: TokenRegressor, path: Path) -> None:
    import torch

    ids = torch.tensor([[101, 7592, 102, 2088, 2003, 102]], dtype=torch.int64)
    mask = torch.ones_like(ids)
    types = torch.tensor([[0, 0, 0, 1, 1, 1]], dtype=torch.int64)
    names = ["input_ids", "attention_mask", "token_type_ids"]
    axes = {n: {0: "batch", 1: "tokens"} for n in [*names, "self_information"]}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (ids, mask, types),
            str(path),
            input_names=names,
            output_names=["self_information"],
            dynamic_axes=axes,
            opset_version=17,
            dynamo=False,
        )


def _initializer_names(path: Path, state: dict[str, np.ndarray]) -> dict[str, list[list[Any]]]:
    """ONNX initializer name -> every [torch parameter, transposed] it holds, matched by value (shape and
    bytes): the exporter renames and transposes linear weights, and one initializer serves parameters
    that are equal (fresh LayerNorms)."""
    import onnx
    from onnx import numpy_helper

    by_bytes: dict[tuple[tuple[int, ...], bytes], list[list[Any]]] = {}
    for name, value in state.items():
        if name.endswith("position_ids"):
            continue
        value = np.ascontiguousarray(value, dtype=np.float32)
        by_bytes.setdefault((value.shape, value.tobytes()), []).append([name, False])
        if value.ndim == 2:
            flipped = np.ascontiguousarray(value.T)
            by_bytes.setdefault((flipped.shape, flipped.tobytes()), []).append([name, True])
    names: dict[str, list[list[Any]]] = {}
    for initializer in onnx.load(str(path)).graph.initializer:
        value = np.ascontiguousarray(numpy_helper.to_array(initializer), dtype=np.float32)
        found = by_bytes.get((value.shape, value.tobytes()))
        if found is not None:
            names[initializer.name] = found
    return names


def write_tokenizer(source: Path, target: Path) -> None:
    """The student's tokenizer.json with truncation and padding off (rows are cut by `rows.py`)."""
    data = json.loads(source.read_text(encoding="utf-8"))
    data["truncation"] = None
    data["padding"] = None
    target.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")


def install(source: Path, target: Path) -> ClassifierCard:
    """Copy a trained classifier (a folder with the three files, or with `classifier.tar.part*` pieces
    of one) into `target`, checked against its card first."""
    import tarfile

    from ..card import read_card

    with tempfile.TemporaryDirectory() as scratch:
        parts = sorted(source.glob("classifier.tar.part*"))
        if parts:
            joined = Path(scratch) / "classifier.tar"
            with joined.open("wb") as out:
                for part in parts:
                    out.write(part.read_bytes())
            with tarfile.open(joined) as archive:
                archive.extractall(Path(scratch) / "files", filter="data")
            source = Path(scratch) / "files"
        card = read_card(source)
        target.mkdir(parents=True, exist_ok=True)
        for name in (MODEL_FILE, TOKENIZER_FILE, CARD_FILE):
            shutil.copyfile(source / name, target / name)
    return card
