"""`promptfold scorer train` end to end: corpus, recorded requests, teacher scores, fitting, evaluation,
export, and a report. The same call runs on CUDA (minutes) or, with small sizes, on a CPU.

    config = TrainConfig(out=Path("out"), device="cuda", budget_chars=12_000_000)
    report = train(config, progress)          # out/model/{scorer-int8.onnx, tokenizer.json, card.json}
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import random
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..card import Geometry

Advance = Callable[[int], None]


class Progress(Protocol):
    """`with progress("teacher", total) as advance: advance(n)`: one bar per phase."""

    def __call__(self, description: str, total: int) -> AbstractContextManager[Advance]: ...


@contextlib.contextmanager
def quiet(description: str, total: int) -> Iterator[Advance]:
    yield lambda n: None


@dataclass(frozen=True)
class TrainConfig:
    out: Path
    device: str = "cpu"
    teacher: str | None = None  # causal LM alias or folder (default: the packaged SmolLM2)
    student: str | None = None  # BERT folder (default: the packaged all-MiniLM-L6-v2)
    layers: int | None = None  # keep this many encoder layers (default: all)
    eval_dir: Path | None = None  # the evaluation sets (their dev splits only)
    budget_chars: int = 12_000_000
    eval_percent: int = 8
    epochs: float = 3.0
    batch_rows: int = 64
    lr: float = 1e-4
    seed: int = 0
    geometry: Geometry = field(default_factory=Geometry)
    per_channel: bool = False
    eval_requests: int = 1500  # held-out requests scored by the exported int8 model on the CPU


def train(config: TrainConfig, progress: Progress = quiet) -> dict[str, Any]:
    import torch
    from tokenizers import Tokenizer

    from backend.models import resolve_embedder

    from ..rows import RowEncoder
    from ..student import from_pretrained
    from .corpus import build_corpus
    from .fit import FitConfig, fit, predict, steps_for, training_arrays
    from .recording import record_requests
    from .teacher import build_examples, teacher_scores

    _seed(config.seed)
    times: dict[str, float] = {}
    clock = time.perf_counter()
    corpus = build_corpus(config.eval_dir, config.budget_chars, config.seed)
    with progress("recording requests", len(corpus.prompts)) as advance:
        recorded = record_requests(corpus.prompts, advance)
    clock = _lap(times, "corpus", clock)
    requests = [r for _, r in recorded]
    with progress("teacher scoring", len(requests)) as advance:
        scores, teacher = teacher_scores(requests, config.teacher, config.device, advance)
    clock = _lap(times, "teacher", clock)

    student_ref = resolve_embedder(config.student)
    tokenizer = Tokenizer.from_file(str(student_ref.path / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    encoder = RowEncoder(tokenizer, config.geometry)
    examples = build_examples([p for p, _ in recorded], requests, scores, encoder)
    held = [corpus.prompts[e.prompt].in_eval(config.eval_percent) for e in examples]
    train_set = [e for e, h in zip(examples, held, strict=True) if not h]
    eval_set = [e for e, h in zip(examples, held, strict=True) if h]
    train_rows = encoder.rows([(e.ids, e.spans) for e in train_set], [e.request.prefix for e in train_set])
    eval_rows = encoder.rows([(e.ids, e.spans) for e in eval_set], [e.request.prefix for e in eval_set])
    arrays = training_arrays(train_rows, train_set)
    clock = _lap(times, "targets", clock)

    model = from_pretrained(str(student_ref.path), config.layers)
    fit_config = FitConfig(config.epochs, config.batch_rows, config.lr, seed=config.seed)
    with progress("training", steps_for(len(arrays), fit_config)) as advance:
        fitted = fit(model, arrays, fit_config, config.device, advance)
    clock = _lap(times, "training", clock)
    predicted = predict(model, eval_rows, eval_set, config.device)
    metrics = {
        "float": _evaluate(eval_set, [(e.spans[:, 0], p) for e, p in zip(eval_set, predicted, strict=True)])
    }
    clock = _lap(times, "evaluation", clock)

    data = _data_summary(corpus, examples, train_set, eval_set, len(train_rows), scores)
    report = _export_and_check(
        model.cpu(), student_ref, config, teacher, data, fitted, eval_set, metrics, progress
    )
    _lap(times, "export", clock)
    report["seconds"] = {k: round(v, 1) for k, v in times.items()}
    report["config"] = {k: str(v) if isinstance(v, Path) else v for k, v in asdict(config).items()}
    report["machine"] = {
        "device": config.device,
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
    (config.out / "report.json").write_text(json.dumps(report, indent=1, default=str))
    return report


def _export_and_check(
    model: Any,
    student_ref: Any,
    config: TrainConfig,
    teacher: dict[str, Any],
    data: dict[str, Any],
    fitted: dict[str, Any],
    eval_set: list[Any],
    metrics: dict[str, Any],
    progress: Progress,
) -> dict[str, Any]:
    """Export to out/model, score held-out requests with the int8 file on the CPU, and put the figures in
    the card."""
    from ..card import CARD_FILE, ClassifierCard
    from ..scorer import ClassifierScorer
    from .export import export

    folder = config.out / "model"
    training = {
        **fitted,
        "epochs": config.epochs,
        "batch_rows": config.batch_rows,
        "lr": config.lr,
        "seed": config.seed,
        "device": config.device,
        "loss": "weighted MSE on unit scores",
    }
    student = {"base": student_ref.model_id, "layers": config.layers or "all"}
    card = export(
        model,
        student_ref.path / "tokenizer.json",
        folder,
        geometry=config.geometry,
        teacher=teacher,
        student=student,
        data=data,
        training=training,
        per_channel=config.per_channel,
    )
    subset = eval_set[: config.eval_requests]
    scorer = ClassifierScorer(folder, device="cpu")
    with progress("int8 check (cpu)", len(subset)) as advance:
        started = time.perf_counter()
        scored = scorer.score_sync([e.request for e in subset])
        seconds = time.perf_counter() - started
        advance(len(subset))
    metrics["int8"] = _evaluate(subset, [(s.spans[:, 0], s.self_information) for s in scored])
    teacher_tokens = sum(u.tokens for e in subset for u in e.units)
    metrics["int8"]["cpu_threads"] = len(os.sched_getaffinity(0))
    metrics["int8"]["teacher_tokens_per_s_cpu"] = round(teacher_tokens / max(seconds, 1e-9), 1)
    card = ClassifierCard(**{**card.__dict__, "evaluation": metrics})
    (folder / CARD_FILE).write_text(card.to_json(), encoding="utf-8")
    size = (folder / "scorer-int8.onnx").stat().st_size
    return {
        "card": json.loads(card.to_json()) | {"student": {**card.student, "onnx_names": "..."}},
        "model_bytes": size,
        "metrics": metrics,
    }


def _evaluate(examples: list[Any], predictions: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, Any]:
    from .evaluate import evaluate

    return evaluate(examples, predictions)


def _data_summary(
    corpus: Any, examples: list[Any], train_set: list[Any], eval_set: list[Any], rows: int, scores: list[Any]
) -> dict[str, Any]:
    return {
        "sources": corpus.sizes(),
        "read_from": corpus.files,
        "requests": len(examples),
        "train_requests": len(train_set),
        "eval_requests": len(eval_set),
        "train_rows": rows,
        "teacher_tokens": int(sum(len(s) for s in scores)),
        "student_wordpieces": int(sum(len(e.ids) for e in examples)),
        "split": "by document (crc32 of its name); eval = dev-built documents held out, never a holdout file",
    }


def _seed(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _lap(times: dict[str, float], phase: str, started: float) -> float:
    now = time.perf_counter()
    times[phase] = now - started
    return now
