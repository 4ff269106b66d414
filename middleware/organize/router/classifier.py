"""A logistic regression on sentence embeddings, in numpy: p(SoT helps | question).

Small on purpose: 384 weights and a bias, trained in well under a second on a few hundred labelled
questions, stored as a .npz of a few KB with its decision threshold and where it came from.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class LogisticModel:
    weights: np.ndarray  # [dim] float32
    bias: float
    threshold: float  # p >= threshold means "use SoT"
    embedder: str  # the embedding model the weights belong to

    def probability(self, embeddings: np.ndarray) -> np.ndarray:
        """p(use SoT) for each row of `embeddings` ([n, dim], unit vectors)."""
        return _sigmoid(embeddings @ self.weights + self.bias)

    def save(self, path: str | Path) -> None:
        np.savez(
            path,
            weights=self.weights.astype(np.float32),
            bias=np.float32(self.bias),
            threshold=np.float32(self.threshold),
            embedder=np.array(self.embedder),
        )

    @classmethod
    def load(cls, path: str | Path) -> LogisticModel:
        with np.load(path) as data:
            return cls(
                weights=data["weights"].astype(np.float32),
                bias=float(data["bias"]),
                threshold=float(data["threshold"]),
                embedder=str(data["embedder"]),
            )


def fit_logistic(
    x: np.ndarray, y: np.ndarray, *, l2: float = 1e-2, steps: int = 2000, learning_rate: float = 0.5
) -> tuple[np.ndarray, float]:
    """Weights and bias minimising the mean log-loss plus l2/2 * |w|^2 (full-batch gradient descent).

    `x` is [n, dim], `y` holds 0/1 labels. The loss is convex, so plain gradient descent with a fixed step
    converges; unit-length embeddings keep the curvature small enough for a step of 0.5.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    weights = np.zeros(x.shape[1])
    bias = 0.0
    n = len(y)
    for _ in range(steps):
        error = _sigmoid(x @ weights + bias) - y
        weights -= learning_rate * (x.T @ error / n + l2 * weights)
        bias -= learning_rate * float(error.mean())
    return weights.astype(np.float32), bias


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-np.clip(z, -30, 30))))
