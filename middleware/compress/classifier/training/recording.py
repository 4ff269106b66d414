"""What the compressor would ask a scorer for: each training prompt is run through the real `Compressor`
with a scorer that records the requests and stops there. The classifier is then trained on exactly the
rows production sends (windows, the text before them, the question in front), whatever the plans do.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ...compressor import Compressor
from ...options import CompressOptions
from ...scorer import ScoreRequest, TokenScores
from .corpus import TrainingPrompt


class _Recorded(Exception):
    """Raised by the recording scorer once it has the requests: nothing after scoring is needed."""


class RecordingScorer:
    name = "recording"

    def __init__(self) -> None:
        self.requests: list[ScoreRequest] = []

    def count_tokens(self, text: str) -> int:
        return len(text) // 4 + 1

    async def score(self, requests: Sequence[ScoreRequest]) -> list[TokenScores]:
        self.requests.extend(requests)
        raise _Recorded


class _Unranked:
    """Question-aware mode ranks passages first; with coarse off every passage is scored, so any order does."""

    def rank(self, question: str, passages: Sequence[str]) -> list[float]:
        return [0.0] * len(passages)


async def _inline(function: Callable[..., Any], *args: Any) -> Any:
    return function(*args)


def record_requests(
    prompts: Sequence[TrainingPrompt], advance: Callable[[int], None] | None = None
) -> list[tuple[int, ScoreRequest]]:
    """(prompt index, request) for every scoring request the compressor makes for the prompts."""
    return asyncio.run(_record(prompts, advance))


async def _record(
    prompts: Sequence[TrainingPrompt], advance: Callable[[int], None] | None
) -> list[tuple[int, ScoreRequest]]:
    found: list[tuple[int, ScoreRequest]] = []
    for index, prompt in enumerate(prompts):
        scorer = RecordingScorer()
        compressor = Compressor(scorer, ranker=_Unranked(), count_tokens=scorer.count_tokens, offload=_inline)
        options = CompressOptions(
            rate=0.5,
            mode=prompt.mode,
            question=prompt.question or None if prompt.mode == "question_aware" else None,
            coarse=False,
        )
        with contextlib.suppress(_Recorded):
            await compressor.compress_parts(
                prompt.context,
                options,
                instruction=prompt.instruction,
                question=prompt.question,
                context_separator=prompt.context_separator,
            )
        found.extend((index, r) for r in scorer.requests if r.text.strip())
        if advance is not None:
            advance(1)
    return found


def empty_scores() -> TokenScores:
    return TokenScores(np.zeros(0, np.int64), np.zeros((0, 2), np.int64), np.zeros(0, np.float32))
