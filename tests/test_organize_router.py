"""The router: rules, the committed training data and weights, and decisions with the real MiniLM."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from middleware.organize.router import DEFAULT_WEIGHTS, Router
from middleware.organize.router.classifier import LogisticModel, fit_logistic
from middleware.organize.router.rules import asks_for_points, plain_by_rule
from middleware.organize.router.train import read_questions


@pytest.mark.parametrize(
    ("question", "rule"),
    [
        ("Solve for x: 2x + 3 = 11.", "math"),
        ("Write a Python function that sorts a list of names.", "code"),
        ("Write a poem about the first snow of winter.", "writing"),
        ("Translate 'good morning' into German.", "rewrite"),
        ("Pretend you are a dragon guarding a castle.", "roleplay"),
        ("Estimate how many bicycles there are in Amsterdam.", "step_by_step"),
        ("Who was the first woman to win a Nobel Prize?", "short_fact"),
        ("Why?", "too_short"),
        ("How can I use Python to rename every file in a folder by its date?", "tooling"),
        ("How do I get rid of a KeyError when my script reads the settings file?", "tooling"),
        ("Please list the three largest deserts of the world in a table with their areas.", "format"),
        ("What are the steps to install a printer driver on a new laptop?", "step_by_step"),
        ("Why does ice float on water? Answer in two sentences.", "short_fact"),
        ("Can you suggest a name for a cafe that sells only soup?", "short_fact"),
    ],
)
def test_rules_send_chains_prose_and_short_facts_to_plain_decoding(question: str, rule: str) -> None:
    found = plain_by_rule(question)
    assert found is not None and found.name == rule


def test_rules_leave_point_by_point_questions_to_the_classifier() -> None:
    for question in (
        "What are some ways to stay focused while studying?",
        "What would happen if trains were free for everyone?",
        "What are the main differences between Python and Go as programming languages?",
        "What are the advantages of Python as a first language for students compared with C++ and Java?",
        "What measures can a city take to make its streets safer for cyclists?",
    ):
        assert plain_by_rule(question) is None
        assert asks_for_points(question)


def test_training_data_is_ours_large_and_balanced() -> None:
    questions = read_questions()
    labels = Counter(q.label for q in questions)
    assert len(questions) >= 200
    assert abs(labels[0] - labels[1]) <= 0.1 * len(questions)
    assert len({q.question for q in questions}) == len(questions)
    assert {"generic", "knowledge", "common_sense", "counterfactual"} <= {
        q.category for q in questions if q.label
    }
    assert {"math", "coding", "fermi", "writing", "roleplay", "short_fact"} <= {
        q.category for q in questions if not q.label
    }


def test_training_data_holds_long_instructions_with_hard_negatives() -> None:
    long = [q for q in read_questions() if len(q.question.split()) >= 15]
    labels = Counter(q.label for q in long)
    assert len(long) >= 150 and min(labels.values()) >= 0.35 * len(long)
    # connected explanations worded with enumerating nouns ("factors", "points") are labelled plain
    assert any(q.label == 0 and not plain_by_rule(q.question) and asks_for_points(q.question) for q in long)


def test_logistic_regression_separates_separable_points() -> None:
    rng = np.random.default_rng(0)
    x = np.vstack([rng.normal(1, 0.3, (40, 3)), rng.normal(-1, 0.3, (40, 3))])
    y = np.array([1] * 40 + [0] * 40)
    weights, bias = fit_logistic(x, y, l2=1e-3)
    model = LogisticModel(weights, bias, 0.5, "toy")
    assert np.mean((model.probability(x) >= 0.5) == (y == 1)) == 1.0


def test_committed_weights_load_with_their_threshold() -> None:
    model = LogisticModel.load(DEFAULT_WEIGHTS)
    assert model.weights.shape == (384,)
    assert 0.0 < model.threshold < 1.0
    assert model.embedder == "all-MiniLM-L6-v2"


def test_router_says_sot_for_advice_and_plain_for_code_and_math() -> None:
    decisions = Router().decide_many(
        [
            "What are some practical tips for keeping a vegetable garden healthy?",
            "What would change if nobody needed money?",
            "Implement a function that merges two dictionaries in Python.",
            "What is 12 multiplied by 7?",
        ]
    )
    assert [d.use_sot for d in decisions] == [True, True, False, False]
    assert decisions[0].probability is not None and decisions[0].probability >= 0.5
    assert decisions[2].rule == "code"


def test_router_without_weights_says_plain_and_why(tmp_path) -> None:
    decision = Router(tmp_path / "missing.npz").decide("What are ways to save energy at home?")
    assert not decision.use_sot
    assert "no classifier" in decision.reason
