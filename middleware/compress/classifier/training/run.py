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
    train_seconds: float | None = None  # stop fitting after this long (the report says so)
    time_budget_s: float | None = None  # the whole run: fitting stops early to leave RESERVE_S for the rest


RESERVE_S = 75.0  # held-out prediction, export, and the int8 checks on the CPU and CUDA


@dataclass
class Prepared:
    """The training data: the corpus, the teacher, and held-out and training examples with their rows."""

    corpus: Any
    teacher: dict[str, Any]
    student: Any  # ModelRef of the student's starting point
    examples: list[Any]
    train_set: list[Any]
    eval_set: list[Any]
    train_rows: list[Any]
    eval_rows: list[Any]
    teacher_tokens: int


def train(config: TrainConfig, progress: Progress = quiet) -> dict[str, Any]:
    import torch

    _seed(config.seed)
    started = time.perf_counter()
    times: dict[str, float] = {}
    data = prepare(config, progress, times)
    clock = time.perf_counter()
    limit = config.train_seconds
    if config.time_budget_s is not None:
        left = max(30.0, config.time_budget_s - (clock - started) - RESERVE_S)
        limit = left if limit is None else min(limit, left)
    model, fitted, metrics = _fit_and_evaluate(config, data, progress, limit)
    clock = _lap(times, "training", clock)
    report = _export_and_check(model.cpu(), config, data, fitted, metrics, progress)
    _lap(times, "export and int8 check", clock)
    report["seconds"] = {k: round(v, 1) for k, v in times.items()}
    report["config"] = {k: str(v) if isinstance(v, Path) else v for k, v in asdict(config).items()}
    report["machine"] = {
        "device": config.device,
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
    (config.out / "report.json").write_text(json.dumps(report, indent=1, default=str))
    return report


def prepare(config: TrainConfig, progress: Progress, times: dict[str, float]) -> Prepared:
    """Corpus, recorded requests, teacher scores, and the examples split by document."""
    from tokenizers import Tokenizer

    from backend.models import resolve_embedder

    from ..rows import RowEncoder
    from .corpus import build_corpus
    from .recording import record_requests
    from .teacher import build_examples, teacher_scores

    clock = time.perf_counter()
    corpus = build_corpus(config.eval_dir, config.budget_chars, config.seed)
    with progress("recording requests", len(corpus.prompts)) as advance:
        recorded = record_requests(corpus.prompts, advance)
    clock = _lap(times, "corpus", clock)
    requests = [r for _, r in recorded]
    with progress("teacher scoring", len(requests)) as advance:
        scores, teacher = teacher_scores(requests, config.teacher, config.device, advance)
    clock = _lap(times, "teacher", clock)
    student = resolve_embedder(config.student)
    tokenizer = Tokenizer.from_file(str(student.path / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    encoder = RowEncoder(tokenizer, config.geometry)
    examples = build_examples([p for p, _ in recorded], requests, scores, encoder)
    held = [corpus.prompts[e.prompt].in_eval(config.eval_percent) for e in examples]
    train_set = [e for e, h in zip(examples, held, strict=True) if not h]
    eval_set = [e for e, h in zip(examples, held, strict=True) if h]
    train_rows = encoder.rows([(e.ids, e.spans) for e in train_set], [e.request.prefix for e in train_set])
    eval_rows = encoder.rows([(e.ids, e.spans) for e in eval_set], [e.request.prefix for e in eval_set])
    _lap(times, "targets", clock)
    tokens = int(sum(len(s) for s in scores))
    return Prepared(corpus, teacher, student, examples, train_set, eval_set, train_rows, eval_rows, tokens)


def _fit_and_evaluate(
    config: TrainConfig, data: Prepared, progress: Progress, limit_s: float | None
) -> tuple[Any, Any, Any]:
    """The student fitted on the training rows, and its agreement with the teacher on held-out ones."""
    from ..student import from_pretrained
    from .fit import FitConfig, fit, predict, steps_for, training_arrays

    arrays = training_arrays(data.train_rows, data.train_set)
    model = from_pretrained(str(data.student.path), config.layers)
    fit_config = FitConfig(
        config.epochs, config.batch_rows, config.lr, seed=config.seed, time_limit_s=limit_s
    )
    with progress("training", steps_for(len(arrays), fit_config)) as advance:
        fitted = fit(model, arrays, fit_config, config.device, advance)
    eval_set = data.eval_set
    values = predict(model, data.eval_rows, eval_set, config.device)
    predicted = [(e.spans[:, 0], v) for e, v in zip(eval_set, values, strict=True)]
    metrics = {"float": _evaluate(eval_set, predicted)}
    sources = [data.corpus.prompts[e.prompt].source for e in eval_set]
    metrics["float"]["agreement_by_source"] = {
        source: _evaluate(
            [e for e, s in zip(eval_set, sources, strict=True) if s == source],
            [p for p, s in zip(predicted, sources, strict=True) if s == source],
        )["agreement"]
        for source in sorted(set(sources))
    }
    return model, fitted, metrics


def _export_and_check(
    model: Any,
    config: TrainConfig,
    data: Prepared,
    fitted: dict[str, Any],
    metrics: dict[str, Any],
    progress: Progress,
) -> dict[str, Any]:
    """Export to out/model, score held-out requests with the int8 file (CPU, and CUDA when training ran
    there) as compression would, and put the figures in the card."""
    from ..card import CARD_FILE, ClassifierCard
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
    student = {"base": data.student.model_id, "layers": config.layers or "all"}
    card = export(
        model,
        data.student.path / "tokenizer.json",
        folder,
        geometry=config.geometry,
        teacher=data.teacher,
        student=student,
        data=_data_summary(data),
        training=training,
        per_channel=config.per_channel,
    )
    subset = random.Random(config.seed).sample(data.eval_set, min(len(data.eval_set), config.eval_requests))
    metrics["int8"] = _check_scorer(folder, "cpu", subset, progress)
    if config.device.startswith("cuda"):  # the same file through the torch runtime
        metrics["int8_on_cuda"] = _check_scorer(folder, config.device, subset, progress)
    card = ClassifierCard(**{**card.__dict__, "evaluation": metrics})
    (folder / CARD_FILE).write_text(card.to_json(), encoding="utf-8")
    size = (folder / "scorer-int8.onnx").stat().st_size
    return {
        "card": json.loads(card.to_json()) | {"student": {**card.student, "onnx_names": "..."}},
        "model_bytes": size,
        "metrics": metrics,
    }


def _check_scorer(folder: Path, device: str, subset: list[Any], progress: Progress) -> dict[str, Any]:
    """The exported classifier, loaded as compression loads it, on held-out requests: agreement with the
    teacher and the teacher tokens it scores per second."""
    from ..scorer import ClassifierScorer

    scorer = ClassifierScorer(folder, device=device)
    scorer.score_sync([e.request for e in subset[:8]])  # warm up (allocations, kernels)
    with progress(f"int8 check ({device})", len(subset)) as advance:
        started = time.perf_counter()
        scored = scorer.score_sync([e.request for e in subset])
        seconds = time.perf_counter() - started
        advance(len(subset))
    metrics = _evaluate(subset, [(s.spans[:, 0], s.self_information) for s in scored])
    teacher_tokens = sum(u.tokens for e in subset for u in e.units)
    metrics["teacher_tokens_per_s"] = round(teacher_tokens / max(seconds, 1e-9), 1)
    if device == "cpu":
        metrics["cpu_threads"] = min(8, len(os.sched_getaffinity(0)))
    return metrics


def _evaluate(examples: list[Any], predictions: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, Any]:
    from .evaluate import evaluate

    return evaluate(examples, predictions)


def _data_summary(data: Prepared) -> dict[str, Any]:
    return {
        "sources": data.corpus.sizes(),
        "read_from": data.corpus.files,
        "requests": len(data.examples),
        "train_requests": len(data.train_set),
        "eval_requests": len(data.eval_set),
        "train_rows": len(data.train_rows),
        "teacher_tokens": data.teacher_tokens,
        "student_wordpieces": int(sum(len(e.ids) for e in data.examples)),
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
