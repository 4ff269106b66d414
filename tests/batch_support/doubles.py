"""Test doubles for the batch job's rewriter seam (not compression: that is tested with the real scorer)."""

from __future__ import annotations

import os
import time
from typing import Any

from middleware.batch import RowInput, RowOutput


class EveryOtherWordRewriter:
    """A stand-in rewriter that keeps every other word and counts words as tokens.

    It lets the job's bookkeeping (order, exactly-once, failures, resume) be tested fast and exactly;
    `delay_s` slows each batch down so that a test can kill the process mid-run.
    """

    def __init__(self, delay_s: float = 0.0, fail_on: str | None = None) -> None:
        self.delay_s = delay_s
        self.fail_on = fail_on
        self.batches: list[int] = []

    def rewrite(self, rows: list[RowInput]) -> list[RowOutput]:
        self.batches.append(len(rows))
        time.sleep(self.delay_s)
        outputs = []
        for row in rows:
            text = (
                row.text
                if row.text is not None
                else " ".join(str(m.get("content", "")) for m in row.messages or [])
            )
            if self.fail_on and self.fail_on in text:
                outputs.append(RowOutput.failed("the double refuses this row"))
                continue
            words = text.split()
            kept = " ".join(words[::2])
            outputs.append(RowOutput(kept, len(words), len(kept.split())))
        return outputs

    def describe(self) -> dict[str, Any]:
        return {"double": "every-other-word", "pid_independent": os.name}
