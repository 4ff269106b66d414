"""The shipped token classifier: where its files are, what its card says, and whether they match.

A trained classifier is a folder of three files:

    scorer-int8.onnx   the encoder and its regression head, weights quantized to int8 (onnxruntime)
    tokenizer.json     the wordpiece tokenizer it was trained with (MiniLM's, truncation and padding off)
    card.json          what it is: the files' sha256, the student, the teacher it imitates, its data,
                       seed, date, evaluation, and the row geometry it was trained on

The package carries one in `middleware/compress/classifier/model/` (`promptfold scorer install` puts an
export there); PROMPTFOLD_CLASSIFIER names another folder. `read_card` checks the files against the card
and raises `ClassifierUnavailable` with one sentence when something is missing or does not match, so the
caller can fall back to the SmolLM2 scorer and say why.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CARD_FORMAT = 1
MODEL_FILE = "scorer-int8.onnx"
TOKENIZER_FILE = "tokenizer.json"
CARD_FILE = "card.json"
PACKAGED = Path(__file__).resolve().parent / "model"


class ClassifierUnavailable(Exception):
    """The token classifier cannot be used here; the message is one sentence saying why."""


@dataclass(frozen=True)
class Geometry:
    """How a scoring request becomes encoder rows (see `rows.py`); a model is used as it was trained."""

    row_tokens: int = 256  # wordpieces per row, [CLS] and the two [SEP] included
    overlap: int = 32  # wordpieces of the text before a row's first scored one (rows after the first)
    prefix_tokens: int = 96  # the prefix (question and/or preceding text) is cut to its head and tail

    def __post_init__(self) -> None:
        if self.row_tokens - 3 - self.prefix_tokens - self.overlap < 32:
            raise ValueError("rows too short: row_tokens must leave 32 scored wordpieces after the prefix")


@dataclass(frozen=True)
class ClassifierCard:
    """What a trained classifier is. `student` holds the encoder config (to rebuild it in torch) and the
    ONNX-initializer -> torch-parameter names; `teacher` the model it imitates and its fingerprint."""

    model_sha256: str
    tokenizer_sha256: str
    geometry: Geometry
    student: dict[str, Any]
    teacher: dict[str, Any]
    data: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    evaluation: dict[str, Any] = field(default_factory=dict)
    created: str = ""
    format: int = CARD_FORMAT

    def to_json(self) -> str:
        data = {k: getattr(self, k) for k in self.__dataclass_fields__}
        data["geometry"] = vars(self.geometry)
        return json.dumps(data, indent=1, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> ClassifierCard:
        data = json.loads(text)
        data["geometry"] = Geometry(**data.get("geometry", {}))
        return cls(**data)


def classifier_dir() -> Path:
    """The folder the classifier is read from: PROMPTFOLD_CLASSIFIER, else the one in the package."""
    explicit = os.environ.get("PROMPTFOLD_CLASSIFIER")
    return Path(explicit).expanduser() if explicit else PACKAGED


def read_card(folder: Path | None = None) -> ClassifierCard:
    """The card of the classifier in `folder` (default `classifier_dir()`), its files checked against it."""
    folder = folder or classifier_dir()
    card_path = folder / CARD_FILE
    if not card_path.is_file():
        raise ClassifierUnavailable(
            f"the token classifier is not installed (no {CARD_FILE} in {folder}): train one with "
            "`promptfold scorer train` and install it with `promptfold scorer install DIR`"
        )
    try:
        raw = json.loads(card_path.read_text(encoding="utf-8"))
        if raw.get("format") != CARD_FORMAT:
            raise ClassifierUnavailable(
                f"the token classifier in {folder} has card format {raw.get('format')}, "
                f"and this promptfold reads format {CARD_FORMAT}: reinstall a matching export"
            )
        card = ClassifierCard.from_json(card_path.read_text(encoding="utf-8"))
    except (OSError, ValueError, TypeError) as error:
        raise ClassifierUnavailable(
            f"the token classifier's card {card_path} is unreadable: {error}"
        ) from error
    for name, expected in ((MODEL_FILE, card.model_sha256), (TOKENIZER_FILE, card.tokenizer_sha256)):
        path = folder / name
        if not path.is_file():
            raise ClassifierUnavailable(f"the token classifier in {folder} lacks {name}: reinstall it")
        found = file_sha256(path)
        if found != expected:
            raise ClassifierUnavailable(
                f"the token classifier's {name} in {folder} does not match its card (sha256 "
                f"{found[:12]}, the card says {expected[:12]}): reinstall it with `promptfold scorer install`"
            )
    return card


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def vocabulary_sha256(tokenizer: Any) -> str:
    """Fingerprint of a tokenizer's vocabulary (anything with `get_vocab()`: token -> id)."""
    vocabulary = sorted(tokenizer.get_vocab().items())
    return hashlib.sha256(json.dumps(vocabulary, ensure_ascii=False).encode()).hexdigest()
