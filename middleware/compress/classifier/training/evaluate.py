"""How close the student is to the teacher, on the units the compressor keeps or drops.

For each held-out request, the student's scores (per wordpiece from the network, or per teacher token as
the shipped scorer hands them back) are landed on the compressor's units the way compression lands any
scorer's (`assign_tokens`), and both scorers' units are ranked:
- agreement at a rate r: the top-scored units are kept until r of the request's prunable tokens (teacher
  tokens, for both, so that only the scores differ) and we count the teacher-kept tokens the student keeps
  too (1.0 = the same mask; a random choice scores about r);
- Pearson and Spearman correlation of unit scores, over all held-out units.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import numpy as np

from ...units import Unit, assign_tokens
from .teacher import Example

RATES = (0.5, 0.25, 0.1)


Scored = tuple[np.ndarray, np.ndarray]  # (token start characters, scores): wordpieces or teacher tokens


def student_units(example: Example, scored: Scored) -> list[Unit]:
    units = copy.deepcopy(example.units)
    starts, scores = scored
    assign_tokens(units, starts, scores.astype(np.float64))
    return units


def evaluate(
    examples: Sequence[Example], predictions: Sequence[Scored], rates: Sequence[float] = RATES
) -> dict[str, Any]:
    kept_both = dict.fromkeys(rates, 0.0)
    kept_teacher = dict.fromkeys(rates, 0.0)
    teacher_all: list[float] = []
    student_all: list[float] = []
    for example, scores in zip(examples, predictions, strict=True):
        units = example.units
        student = student_units(example, scores)
        prunable = [i for i, u in enumerate(units) if not u.always and u.tokens > 0]
        if not prunable:
            continue
        tokens = np.asarray([units[i].tokens for i in prunable], dtype=np.float64)
        teacher_scores = np.asarray([units[i].score for i in prunable])
        student_scores = np.asarray([student[i].score for i in prunable])
        teacher_all.extend(teacher_scores.tolist())
        student_all.extend(student_scores.tolist())
        for rate in rates:
            budget = rate * tokens.sum()
            mask_t = _top(teacher_scores, tokens, budget)
            mask_s = _top(student_scores, tokens, budget)
            kept_both[rate] += float(tokens[mask_t & mask_s].sum())
            kept_teacher[rate] += float(tokens[mask_t].sum())
    t, s = np.asarray(teacher_all), np.asarray(student_all)
    return {
        "requests": len(examples),
        "units": len(t),
        "agreement": {str(r): round(kept_both[r] / max(kept_teacher[r], 1.0), 4) for r in rates},
        "pearson": round(_pearson(t, s), 4),
        "spearman": round(_pearson(_ranks(t), _ranks(s)), 4),
        "mean_abs_error_nats": round(float(np.mean(np.abs(t - s))) if len(t) else 0.0, 4),
    }


def _top(scores: np.ndarray, tokens: np.ndarray, budget: float) -> np.ndarray:
    """Units kept by score, highest first (ties by position), until `budget` tokens."""
    order = np.lexsort((np.arange(len(scores)), -scores))
    spent = np.cumsum(tokens[order])
    mask = np.zeros(len(scores), dtype=bool)
    mask[order[spent <= budget]] = True
    return mask


def _ranks(values: np.ndarray) -> np.ndarray:
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values), dtype=np.float64)
    ranks[order] = np.arange(len(values))
    return ranks


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 2 or a.std() == 0 or b.std() == 0:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])
