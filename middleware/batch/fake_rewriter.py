"""A fake rewriter for tests: the batch machinery (formats, resume, bad rows, crashes) without a model.

Shipped in the package, as httpx ships MockTransport, so that a test can run the real CLI in a subprocess
and kill it: `promptfold batch rewrite` uses it only when PROMPTFOLD_BATCH_FAKE_REWRITER is set (its value
holds the options below as key=value pairs, e.g. `delay_s=0.05,crash_on=POISON`), and says so on stderr.
"""

from __future__ import annotations

import os
import signal
import time
from typing import Any

from .rows import RowInput, RowOutput

FAKE_REWRITER_ENV = "PROMPTFOLD_BATCH_FAKE_REWRITER"


class FakeRewriter:
    """Keeps every other word and counts words as tokens, so results are exact and instant.

    `delay_s` slows each batch down (a test can kill the process mid-run); a row containing `fail_on` gets
    an error; a row containing `crash_on` kills the process with SIGKILL, as a crash in native code or an
    out-of-memory kill would (nothing in Python can catch it).
    """

    def __init__(self, delay_s: float = 0.0, fail_on: str | None = None, crash_on: str | None = None) -> None:
        self.delay_s = delay_s
        self.fail_on = fail_on
        self.crash_on = crash_on
        self.batches: list[int] = []  # rows per rewrite call, for tests

    def rewrite(self, rows: list[RowInput]) -> list[RowOutput]:
        self.batches.append(len(rows))
        time.sleep(self.delay_s)
        return [self._one(row) for row in rows]

    def _one(self, row: RowInput) -> RowOutput:
        texts = [row.text] if row.messages is None else [str(m.get("content", "")) for m in row.messages]
        everything = " ".join(t or "" for t in texts)
        if self.crash_on and self.crash_on in everything:
            os.kill(os.getpid(), signal.SIGKILL)
        if self.fail_on and self.fail_on in everything:
            return RowOutput.failed("the fake rewriter refuses this row")
        kept = [" ".join((t or "").split()[::2]) for t in texts]
        tokens_in, tokens_out = len(everything.split()), sum(len(k.split()) for k in kept)
        if row.messages is None:
            return RowOutput(kept[0], tokens_in, tokens_out)
        messages = [{**m, "content": k} for m, k in zip(row.messages, kept, strict=True)]
        return RowOutput(messages, tokens_in, tokens_out)

    def describe(self) -> dict[str, Any]:
        # delay_s and crash_on change no written row: a run with them resumes as the same job without them
        return {"fake": "every-other-word", "fail_on": self.fail_on}

    def close(self) -> None:
        pass
