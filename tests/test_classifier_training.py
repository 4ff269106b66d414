"""Training the classifier: the corpus (dev splits only), the recorded requests, the targets, and a tiny
run of `promptfold scorer train` end to end with the real SmolLM2 as the teacher."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from middleware.compress.classifier.training.corpus import TrainingPrompt, build_corpus
from middleware.compress.classifier.training.recording import record_requests
from middleware.compress.classifier.training.teacher import unit_targets
from middleware.compress.units import split_units
from tests.classifier_doubles import tiny_student_folder

PASSAGES = [
    "Document [1](Title: Lighthouses) The lighthouse at the harbour entrance was first lit in 1823.",
    "Document [2](Title: Bridges) The old stone bridge carried the main road until the flood of 1911.",
]


def eval_folder(root: Path) -> Path:
    """A small stand-in for shared/eval: dev rows, and a holdout row that must never be read."""
    nq = root / "nq_multidoc20_synth"
    nq.mkdir(parents=True)
    ctxs = [
        {"title": f"Topic {i}", "text": f"Passage {i} tells a long story about river boats. " * 6}
        for i in range(4)
    ]
    row = {"id": "nq-dev-1", "question": "who built the boats", "answers": ["Ann"], "ctxs": ctxs}
    (nq / "dev.jsonl").write_text(json.dumps(row) + "\n")
    secret = {**row, "id": "nq-holdout-1", "ctxs": [{"title": "HOLDOUT", "text": "HOLDOUT text"}]}
    (nq / "holdout.jsonl").write_text(json.dumps(secret) + "\n")
    return root


def test_the_corpus_reads_dev_splits_and_never_a_holdout_file(tmp_path: Path) -> None:
    corpus = build_corpus(eval_folder(tmp_path / "eval"), 20_000, seed=0)
    texts = [p.context if isinstance(p.context, str) else "\n".join(p.context) for p in corpus.prompts]
    assert any("river boats" in t for t in texts)
    assert not any("HOLDOUT" in t for t in texts)
    assert {p.mode for p in corpus.prompts if p.source == "nq"} == {"plain", "question_aware"}
    assert not any("promptfold" in p.group for p in corpus.prompts)


def test_the_same_seed_builds_the_same_corpus(tmp_path: Path) -> None:
    folder = eval_folder(tmp_path / "eval")
    first, second = build_corpus(folder, 30_000, seed=3), build_corpus(folder, 30_000, seed=3)
    assert [p.group for p in first.prompts] == [p.group for p in second.prompts]


def test_recorded_requests_are_what_the_compressor_asks_a_scorer() -> None:
    question = "Question: when was the lighthouse first lit?\nAnswer:"
    prompts = [
        TrainingPrompt("nq", "a", "plain", PASSAGES, "Answer the question.", question, "\n"),
        TrainingPrompt("nq", "a", "question_aware", PASSAGES, "Answer the question.", question, "\n"),
    ]
    recorded = record_requests(prompts)
    plain = [r for i, r in recorded if i == 0]
    aware = [r for i, r in recorded if i == 1]
    assert [r.text for r in plain] == PASSAGES == [r.text for r in aware]
    assert plain[1].prefix.endswith(PASSAGES[0] + "\n")  # the text before it
    assert all(r.prefix.startswith(question) for r in aware)  # the question in front


def test_each_wordpiece_learns_the_score_of_its_unit() -> None:
    text = "Paid $1,200 to Ann."
    units = split_units(text)
    for unit, score in zip(units, [1.0, 9.0, 2.0, 3.0, 0.0], strict=False):
        unit.tokens, unit.score = 1, score
    units[-1].tokens = 0  # the full stop came inside the word before it
    starts = np.asarray([0, 5, 6, 7, 8, 9, 12, 15, 18])  # paid $ 1 , 200 to ann .
    target, weight = unit_targets(units, starts)
    assert target.tolist() == [1.0, 9.0, 9.0, 9.0, 9.0, 2.0, 3.0, 3.0, 3.0][: len(starts)] or target[1] == 9.0
    number = [i for i, s in enumerate(starts) if 5 <= s < 11]
    assert set(target[number].tolist()) == {9.0}
    assert abs(weight[number].sum() - 1.0) < 1e-6
    assert target[-1] == target[-2]  # the full stop follows "Ann"


@pytest.mark.slow
def test_a_tiny_training_run_exports_a_classifier_the_scorer_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, local_backend
) -> None:
    from middleware.compress.classifier import ClassifierScorer, Geometry
    from middleware.compress.classifier.training.run import TrainConfig, train

    student = tiny_student_folder(tmp_path / "student")
    config = TrainConfig(
        out=tmp_path / "out",
        student=str(student),
        eval_dir=eval_folder(tmp_path / "eval"),
        budget_chars=4000,
        eval_percent=30,
        epochs=1,
        batch_rows=8,
        geometry=Geometry(row_tokens=128, overlap=16, prefix_tokens=48),
        eval_requests=50,
    )
    report = train(config)
    card = report["card"]
    assert (
        card["teacher"]["model_id"] == "SmolLM2-135M-Instruct" and len(card["teacher"]["fingerprint"]) == 64
    )
    assert card["data"]["teacher_tokens"] > 200 and card["training"]["seed"] == 0
    assert set(report["metrics"]["int8"]["agreement"]) == {"0.5", "0.25", "0.1"}
    scorer = ClassifierScorer(tmp_path / "out" / "model")
    assert scorer.card.geometry.row_tokens == 128
    assert json.loads((tmp_path / "out" / "report.json").read_text())["seconds"]["teacher"] >= 0
