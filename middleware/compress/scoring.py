"""Scoring plan: which rows the scorer runs for the segments to prune, and how token scores land on units.

Long segments are cut into windows of about WINDOW_CHARS, all sent in one scorer call (one batch). In
plain mode each row reads the CONTEXT_CHARS of text before it first; in question-aware mode a passage
stands alone after the question (conditional), and for contrastive scores also without it.
"""

from __future__ import annotations

import numpy as np

from .scorer import Scorer, ScoreRequest
from .units import assign_tokens
from .work import Work

WINDOW_CHARS = 2000  # about 500 tokens: longer segments are scored as several rows of one batch
CONTEXT_CHARS = 160  # plain mode: the text before a row that the model reads first (about 40 tokens)


async def score_units(
    scorer: Scorer, works: list[Work], targets: list[Work], question: str | None, how: str
) -> None:
    """Fill unit token counts and scores of `targets`, all rows in one scorer call."""
    requests: list[ScoreRequest] = []
    plan: list[tuple[Work, int, int]] = []  # work, window start (chars), row index
    for work in targets:
        text = work.segment.text
        # question-aware passages stand alone: what came before them is another passage
        before = "" if question is not None else _text_before(works, work)
        for start, end in _windows(text):
            context = (before + text[:start])[-CONTEXT_CHARS:]
            if question is not None and how in ("conditional", "contrastive"):
                prefix = f"{question}\n\n{context}" if context else f"{question}\n\n"
                requests.append(ScoreRequest(text[start:end], prefix))
                plan.append((work, start, len(requests) - 1))
                if how == "contrastive":
                    requests.append(ScoreRequest(text[start:end], context))
            else:
                requests.append(ScoreRequest(text[start:end], context))
                plan.append((work, start, len(requests) - 1))
    results = await scorer.score(requests) if requests else []
    gathered: dict[int, tuple[list[np.ndarray], list[np.ndarray]]] = {}
    for work, start, row in plan:
        scores = results[row]
        values = scores.self_information
        if how == "contrastive" and question is not None:
            plain = results[row + 1].self_information
            values = _contrastive(values, plain) if len(plain) == len(values) else values
        starts, vals = gathered.setdefault(id(work), ([], []))
        starts.append(scores.spans[:, 0] + start if len(scores) else np.zeros(0, dtype=np.int64))
        vals.append(values)
    for work in targets:
        starts, vals = gathered.get(id(work), ([], []))
        if starts:
            values = _settled(np.concatenate(vals))
            assign_tokens(work.units, np.concatenate(starts), values, counts=not work.counted)


# --- output ---------------------------------------------------------------------------------------


SCORE_QUANTUM = 0.01  # nats


def _settled(values: np.ndarray) -> np.ndarray:
    """Scores rounded to SCORE_QUANTUM: a row's bf16 forward differs in its last bits with the batch it
    shares (other requests' rows, padding), and a choice must not flip with that. With ties broken by
    position, the same input and options give the same output, whoever else was being scored."""
    return (np.round(values / SCORE_QUANTUM) * SCORE_QUANTUM).astype(np.float32)


def _contrastive(with_question: np.ndarray, without: np.ndarray) -> np.ndarray:
    """log p(token | question, ...) - log p(token | ...): how much the question makes a token expected."""
    return (without - with_question).astype(np.float32)


def _windows(text: str) -> list[tuple[int, int]]:
    """[start, end) windows of at most about WINDOW_CHARS, cut at whitespace."""
    windows = []
    at = 0
    while at < len(text):
        end = min(len(text), at + WINDOW_CHARS)
        if end < len(text):
            cut = max(
                text.rfind(" ", at + WINDOW_CHARS // 2, end), text.rfind("\n", at + WINDOW_CHARS // 2, end)
            )
            end = cut if cut > at else end
        windows.append((at, end))
        at = end
    return windows


def _text_before(works: list[Work], work: Work) -> str:
    """The original text just before a segment in the same message (what its first tokens follow)."""
    pieces: list[str] = []
    for other in works:
        if other is work:
            break
        if other.segment.message == work.segment.message:
            pieces.append(other.segment.text + other.segment.separator)
    return "".join(pieces)[-CONTEXT_CHARS:]
