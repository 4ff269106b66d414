"""Concurrent compressions share the scoring model: their rows go into the same forwards; and when every
caller of a scoring batch has gone (a client disconnected), the scorer stops between forwards."""

from __future__ import annotations

import asyncio
import time

import pytest

from middleware.compress.batching import SharedScorer
from middleware.compress.scorer import LocalScorer, ScoreRequest

SENTENCES = [f"Row {i}: the river crossed the valley near the old mill in {1900 + i}." for i in range(24)]


@pytest.fixture()
def counted(local_backend) -> tuple[LocalScorer, list[int]]:
    """A LocalScorer on the engine's own SmolLM2 with small forwards, counting the rows of each forward."""
    scorer = LocalScorer(loaded=local_backend.loaded, max_batch_tokens=48)
    rows: list[int] = []
    forward = scorer._forward

    def counting(batch):  # type: ignore[no-untyped-def]
        rows.append(len(batch))
        time.sleep(0.05)  # a slower model: the test can act between two forwards
        return forward(batch)

    scorer._forward = counting  # type: ignore[method-assign]
    return scorer, rows


def test_concurrent_callers_share_forwards(counted) -> None:
    inner, rows = counted
    inner.max_batch_tokens = 4096  # one forward holds every row that is waiting
    shared = SharedScorer(inner)

    async def main() -> list:
        return await asyncio.gather(*(shared.score([ScoreRequest(text)]) for text in SENTENCES))

    results = asyncio.run(main())
    assert len(results) == len(SENTENCES) and all(len(r[0]) > 5 for r in results)
    assert shared.calls <= 2 and len(rows) <= 2  # the first caller alone, then everyone who queued meanwhile


def test_scoring_stops_between_forwards_once_every_caller_has_gone(counted) -> None:
    inner, rows = counted
    shared = SharedScorer(inner)

    async def main() -> None:
        task = asyncio.ensure_future(shared.score([ScoreRequest(text) for text in SENTENCES]))
        while not rows:
            await asyncio.sleep(0.01)
        task.cancel()  # the client went away after the first forward
        await asyncio.sleep(0.5)  # the worker thread notices before its next forward

    asyncio.run(main())
    finished = len(rows)
    time.sleep(0.3)
    assert len(rows) == finished  # nothing more ran
    assert finished < len(SENTENCES) // 2  # far fewer forwards than the batch needed
