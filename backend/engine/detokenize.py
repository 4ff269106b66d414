"""Turning a growing list of token ids into text deltas, and stopping on stop strings.

Text is only released once it is final: a token that ends inside a multi-byte character decodes to
U+FFFD until the next token completes it, and text that could still become a stop string is held back.
"""

from __future__ import annotations

from typing import Any

REPLACEMENT = "\ufffd"


class TextStream:
    def __init__(self, tokenizer: Any, stop: list[str]) -> None:
        self._tokenizer = tokenizer
        self._stop = [s for s in stop if s]
        self._ids: list[int] = []
        self._text = ""  # decoded text of all ids, stop string cut off once found
        self._released = 0  # chars of _text already handed out
        self.stopped = False

    @property
    def text(self) -> str:
        return self._text

    def add(self, token_id: int) -> str:
        """Add one token; return the text that became final (possibly empty)."""
        self._ids.append(token_id)
        text = self._tokenizer.decode(self._ids, skip_special_tokens=True)
        if text.endswith(REPLACEMENT):
            return ""  # an unfinished multi-byte character: wait for the next token
        self._text = text
        cut = self._find_stop(text)
        if cut is not None:
            self._text = text[:cut]
            self.stopped = True
            return self._release(len(self._text))
        return self._release(len(text) - self._held_back(text))

    def finish(self) -> str:
        """Release whatever is still held back (the generation ended without a stop string)."""
        return self._release(len(self._text))

    def _release(self, upto: int) -> str:
        if upto <= self._released:
            return ""
        delta = self._text[self._released : upto]
        self._released = upto
        return delta

    def _find_stop(self, text: str) -> int | None:
        # Search only the part that could contain a new match: new text plus a stop string's length.
        start = max(0, self._released - max((len(s) for s in self._stop), default=0))
        hits = [i for i in (text.find(s, start) for s in self._stop) if i >= 0]
        return min(hits) if hits else None

    def _held_back(self, text: str) -> int:
        """Length of the longest tail of `text` that is the start of some stop string."""
        longest = 0
        for stop in self._stop:
            for n in range(min(len(stop) - 1, len(text)), 0, -1):
                if text.endswith(stop[:n]):
                    longest = max(longest, n)
                    break
        return longest
