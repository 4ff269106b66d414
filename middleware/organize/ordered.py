"""The answer in skeleton order: how points are written out, whole or as a stream.

    1. **Balanced meals**: Eat vegetables, whole grains and ...
    2. **Regular exercise**: ...

Streaming sends point 1 as it is written and each later point once all earlier ones are done (its
text so far at once, then live). Whitespace at the ends of a branch is dropped in both forms, so a
streamed answer reads exactly like the whole one.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

from .plan import BranchRecord, PlanRecord
from .run import BranchSlot


@dataclass(frozen=True)
class Fallback:
    """Put on the slot queue instead of slots: answer with plain decoding, for `reason`."""

    reason: str


def assemble(branches: list[BranchRecord]) -> str:
    """The whole answer from finished branches, in outline order."""
    return "\n".join(
        _entry(number, branch.point, branch.text.strip()) for number, branch in enumerate(branches, 1)
    )


def _entry(number: int, point: str, text: str) -> str:
    return f"{number}. **{point}**" + (f": {text}" if text else "")


class _Trim:
    """Drops leading whitespace and holds back trailing whitespace until more text follows it."""

    def __init__(self) -> None:
        self.started = False
        self.pending = ""

    def push(self, text: str) -> str:
        if not self.started:
            text = text.lstrip()
            if not text:
                return ""
            self.started = True
        text = self.pending + text
        kept = text.rstrip()
        self.pending = text[len(kept) :]
        return kept


async def ordered_text(
    slots: asyncio.Queue[BranchSlot | Fallback | BaseException | None], record: PlanRecord
) -> AsyncIterator[str | Fallback]:
    """Text pieces of the answer in outline order; a Fallback item means "answer plainly instead".

    A point whose branch failed for good is left out (and said so in `record.events`) once earlier
    text was sent; if nothing was sent yet, the Fallback comes instead. An exception put on `slots` is
    raised here.
    """
    number = 0
    sent_any = False
    while True:
        slot = await slots.get()
        if slot is None:
            return
        if isinstance(slot, BaseException):  # the producer failed unexpectedly
            raise slot
        if isinstance(slot, Fallback):
            yield slot
            return
        trim = _Trim()
        header = False
        while True:
            kind, text = await slot.deltas.get()
            if kind == "delta":
                piece = trim.push(text)
                if not piece:
                    continue
                if not header:
                    number += 1
                    header = True
                    piece = ("\n" if number > 1 else "") + f"{number}. **{slot.record.point}**: " + piece
                sent_any = True
                yield piece
            elif kind == "done":
                if not header:
                    number += 1
                    sent_any = True
                    yield ("\n" if number > 1 else "") + _entry(number, slot.record.point, "")
                break
            else:
                if not sent_any:
                    yield Fallback(f"point {slot.record.index} failed after a retry: {text}")
                    return
                if header:  # part of it is already with the client: it ends where it broke
                    record.events.append(f"point {slot.record.index} ends early, it failed twice: {text}")
                else:
                    record.events.append(f"point {slot.record.index} left out of the answer: {text}")
                    slot.record.text = ""
                break
