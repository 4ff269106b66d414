"""The router: does skeleton-then-expand help this question, or hurt it?

It helps when the answer is a set of independent points (advice, the aspects of a topic, causes and
effects, "what if" scenarios) and hurts when the answer is a chain or one piece (math, code, step-by-step
reasoning, stories and letters, role-play, short facts). Rules (`rules.py`) rule out the clear "hurts"
cases for free; a logistic regression on MiniLM embeddings (`classifier.py`, trained by `train.py` on
our own labelled questions in `data/router_train.csv`) decides the rest, and must be very sure
(p >= CONFIDENT) when the wording does not ask for several points (`rules.asks_for_points`): a wrong
"SoT" costs answer quality, a wrong "plain" only speed.

    router = Router()
    router.decide("What are some ways to save money on groceries?")
    # RouteDecision(use_sot=True, reason='classifier p=0.93 >= 0.62 (asks for several points)', rule=None, probability=0.93)
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .classifier import LogisticModel
from .rules import asks_for_points, plain_by_rule

DATA_DIR = Path(__file__).parent / "data"
DEFAULT_WEIGHTS = DATA_DIR / "router_weights.npz"
TRAINING_DATA = DATA_DIR / "router_train.csv"
CONFIDENT = 0.9  # p(use SoT) needed when the question does not ask for several points


@dataclass(frozen=True)
class RouteDecision:
    use_sot: bool
    reason: str  # one phrase a person can read in the report
    rule: str | None = None  # the rule that said "plain", if one did
    probability: float | None = None  # the classifier's p(use SoT), if it ran

    def as_dict(self) -> dict[str, Any]:
        return {
            "use_sot": self.use_sot,
            "reason": self.reason,
            "rule": self.rule,
            "probability": None if self.probability is None else round(self.probability, 3),
        }


class Router:
    """Rules first, then the classifier. The embedder and weights load on first use, once."""

    def __init__(self, weights: str | Path = DEFAULT_WEIGHTS, *, embedder: str | None = None) -> None:
        self.weights_path = Path(weights)
        self.embedder = embedder
        self._model: LogisticModel | None = None
        self._unavailable: str | None = None
        self._lock = threading.Lock()

    def decide(self, question: str) -> RouteDecision:
        return self.decide_many([question])[0]

    def decide_many(self, questions: Sequence[str]) -> list[RouteDecision]:
        """One decision per question; the classifier embeds the questions no rule settled in one batch."""
        decisions: list[RouteDecision | None] = []
        open_questions: list[int] = []
        for i, question in enumerate(questions):
            rule = plain_by_rule(question)
            if rule is not None:
                decisions.append(RouteDecision(False, f"rule '{rule.name}': {rule.why}", rule=rule.name))
            else:
                decisions.append(None)
                open_questions.append(i)
        if open_questions:
            for i, decision in zip(
                open_questions, self._classify([questions[i] for i in open_questions]), strict=True
            ):
                decisions[i] = decision
        return [d for d in decisions if d is not None]

    def _classify(self, questions: list[str]) -> list[RouteDecision]:
        model = self._load()
        if model is None:
            reason = f"no classifier ({self._unavailable}); plain by default"
            return [RouteDecision(False, reason) for _ in questions]
        from ...embeddings import shared_embedder

        probabilities = model.probability(shared_embedder(self.embedder).embed(questions))
        return [
            _decision(float(p), model.threshold, asks_for_points(q))
            for p, q in zip(probabilities, questions, strict=True)
        ]

    def _load(self) -> LogisticModel | None:
        with self._lock:
            if self._model is None and self._unavailable is None:
                try:
                    from ...embeddings import shared_embedder

                    self._model = LogisticModel.load(self.weights_path)
                    _ = shared_embedder(self.embedder).dim  # loads the embedder now, or fails here
                except Exception as error:  # no weights, or no embedder on this machine
                    self._unavailable = f"{type(error).__name__}: {error}"
            return self._model


def _decision(probability: float, threshold: float, cue: bool) -> RouteDecision:
    needed = threshold if cue else max(threshold, CONFIDENT)
    verdict = ">=" if probability >= needed else "<"
    why = "asks for several points" if cue else "no list cue, so the bar is higher"
    return RouteDecision(
        probability >= needed,
        f"classifier p={probability:.2f} {verdict} {needed:.2f} ({why})",
        probability=probability,
    )
