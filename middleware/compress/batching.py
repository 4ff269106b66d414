"""Sharing the scoring model between concurrent compressions: their requests go to the model together.

`SharedScorer` wraps any Scorer. While the model runs one batch, requests from other compressions queue;
when it is free, everything queued goes as the next batch, so 16 concurrent compressions are a few
forwards instead of 16 queued ones (continuous batching at the granularity of a forward). Callers that
are known to arrive together (the rows of a batch-rewrite batch) can be registered with `gather`: the
first batch then waits until every registered caller has asked (or `max_wait_s` passed), so the rows go
to the model as one batch rather than the first alone and the rest together.

One SharedScorer serves one event loop (the proxy's, the SDK's, a batch job's); a call from another loop
goes straight to the inner scorer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from typing import Any

from .scorer import WANTED, Scorer, ScoreRequest, ScoringAbandoned, TokenScores

Waiting = list[tuple[list[ScoreRequest], "asyncio.Future[list[TokenScores]]"]]


class SharedScorer:
    def __init__(self, inner: Scorer, *, max_wait_s: float = 0.05) -> None:
        self.inner = inner
        self.name = inner.name
        self.max_wait_s = max_wait_s
        self.calls = 0  # batches sent to `inner` (for tests and stats)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiting: Waiting = []
        self._busy = False
        self._registered = 0  # callers announced by `gather` that are still running
        self._timer: asyncio.TimerHandle | None = None

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    async def score(self, requests: Sequence[ScoreRequest]) -> list[TokenScores]:
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
        if loop is not self._loop:  # another loop's caller: no sharing, no cross-loop futures
            return await self.inner.score(requests)
        future: asyncio.Future[list[TokenScores]] = loop.create_future()
        self._waiting.append((list(requests), future))
        self._maybe_start()
        return await future

    async def gather(self, works: Sequence[Awaitable[Any]]) -> list[Any]:
        """Await `works` (coroutines that score through this scorer) as callers known to come together;
        results in order, an exception in place of a result that raised."""
        self._registered += len(works)  # all of them before any starts: the first waits for the rest

        async def one(work: Awaitable[Any]) -> Any:
            try:
                return await work
            finally:
                self._registered -= 1
                self._maybe_start()

        return await asyncio.gather(*(one(work) for work in works), return_exceptions=True)

    def _maybe_start(self) -> None:
        if self._busy or not self._waiting:
            return
        if len(self._waiting) < self._registered:  # announced callers still on their way
            if self._timer is None and self._loop is not None:
                self._timer = self._loop.call_later(self.max_wait_s, self._start)
            return
        self._start()

    def _start(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._busy or not self._waiting:
            return
        self._busy = True
        batch, self._waiting = self._waiting, []
        assert self._loop is not None
        self._loop.create_task(self._run(batch))

    async def _run(self, batch: Waiting) -> None:
        self.calls += 1
        # A scorer that works in steps (LocalScorer: one forward per group of rows) stops between steps
        # once every caller of this batch has gone (a client that disconnected frees the model).
        WANTED.set(lambda: any(not future.cancelled() for _, future in batch))
        try:
            scores = await self.inner.score([r for requests, _ in batch for r in requests])
        except ScoringAbandoned:
            pass  # nobody is waiting for these scores
        except Exception as error:  # every caller of this batch learns of the failure
            for _, future in batch:
                if not future.done():
                    future.set_exception(error)
        else:
            at = 0
            for requests, future in batch:
                if not future.done():  # a caller that went away (cancelled) just misses its slice
                    future.set_result(scores[at : at + len(requests)])
                at += len(requests)
        finally:
            self._busy = False
            self._maybe_start()
