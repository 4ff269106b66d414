"""The skeleton: a short numbered outline of the answer, asked for with a few-shot prompt and read line
by line as it is written.

The prompt shows two solved examples as earlier chat turns (a 135M model copies a format far better
than it follows an instruction) and prefills the answer with "1." so that the first token already
continues a list. `SkeletonReader` turns the streamed text into points the moment each line is complete
(pipelined expansion starts there) and says when the outline is over: a blank line, a line that is not
a list item, a numbering that starts again, a repeated point (a small model that repeats itself is
looping) or the point limit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from backend import ChatMessage

ANSWER_START = "1."  # prefilled into the assistant turn; the model continues " Point one\n2. ..."
MAX_POINT_WORDS = 14  # a longer line is prose, not an outline point
MIN_POINT_CHARS = 2

SKELETON_INSTRUCTION = (
    "Give only the outline of an answer: 3 to {max_points} numbered points of a few words each, "
    "no explanations.\n\nQuestion: "
)
SKELETON_EXAMPLES: tuple[tuple[str, str], ...] = (
    (
        "What are good habits for staying healthy?",
        "1. Balanced meals\n2. Regular exercise\n3. Enough sleep\n4. Drinking water\n5. Managing stress",
    ),
    (
        "How do bees help the environment?",
        "1. Pollinating plants\n2. Supporting food crops\n3. Feeding other animals\n4. Keeping ecosystems diverse",
    ),
)

# "1.", "1)", "(1)", "1:", "1 -", "Step 1:", "Point 1." and bullets "-", "*", "•"
_NUMBERED = re.compile(r"^\s*(?:(?:step|point)\s+)?\(?(\d{1,2})\s*(?:[.):]|\s-)\s*(.*)$", re.IGNORECASE)
_BULLET = re.compile(r"^\s*[-*•]\s+(.*)$")
_MARKUP = re.compile(r"[*_`#]+")
_WORD = re.compile(r"[a-z0-9]+")


def skeleton_messages(question: str, system: str | None, max_points: int) -> list[ChatMessage]:
    """Chat turns that ask for the outline of `question` (render them, then append ANSWER_START)."""
    instruction = SKELETON_INSTRUCTION.format(max_points=max_points)
    messages: list[ChatMessage] = [{"role": "system", "content": system}] if system else []
    for example_question, example_outline in SKELETON_EXAMPLES:
        messages.append({"role": "user", "content": instruction + example_question})
        messages.append({"role": "assistant", "content": example_outline})
    messages.append({"role": "user", "content": instruction + question})
    return messages


@dataclass
class DroppedLine:
    line: str
    why: str  # "duplicate", "not a list item", "too long", "empty point"


@dataclass
class Skeleton:
    """The outline as parsed: usable points in order, what was dropped and why, and why reading stopped."""

    points: list[str] = field(default_factory=list)
    dropped: list[DroppedLine] = field(default_factory=list)
    stop_reason: str = "the generation ended"
    text: str = ""  # the raw outline text, with the prefilled answer start

    def as_dict(self) -> dict[str, object]:
        return {
            "points": list(self.points),
            "dropped": [{"line": d.line, "why": d.why} for d in self.dropped],
            "stop_reason": self.stop_reason,
            "text": self.text,
        }


class SkeletonReader:
    """Feed streamed text; get each usable point as soon as its line is complete.

    `done` turns True once the outline is over; later text is ignored (the caller may stop the stream).
    """

    def __init__(self, max_points: int, start: str = ANSWER_START) -> None:
        self.max_points = max_points
        self.skeleton = Skeleton(text=start)
        self.done = False
        self._pending = start  # the current, unfinished line
        self._last_number = 0
        self._seen: list[set[str]] = []

    def feed(self, text: str) -> list[str]:
        """New points completed by `text` (a line counts as complete at its newline)."""
        if self.done:
            return []
        self.skeleton.text += text
        self._pending += text
        points: list[str] = []
        while "\n" in self._pending and not self.done:
            line, self._pending = self._pending.split("\n", 1)
            point = self._take_line(line)
            if point is not None:
                points.append(point)
            if not self.done and not line.strip() and self.skeleton.points:
                self._stop("a blank line ended the outline")
        return points

    def finish(self) -> list[str]:
        """The last line, if the generation ended without a newline after it."""
        if self.done:
            return []
        points: list[str] = []
        if self._pending.strip():
            point = self._take_line(self._pending)
            if point is not None:
                points.append(point)
        self._pending = ""
        self.done = True
        return points

    def _take_line(self, line: str) -> str | None:
        if not line.strip():
            return None
        number, body = _split_marker(line)
        if body is None:
            if self.skeleton.points:
                self._drop(line, "not a list item")
                self._stop("a line that is not a list item ended the outline")
            else:
                self._drop(line, "not a list item")
            return None
        if number is not None and number <= self._last_number and number == 1:
            self._drop(line, "numbering started again")
            self._stop("the numbering started again")
            return None
        if number is not None:
            self._last_number = number
        point = clean_point(body)
        if len(point) < MIN_POINT_CHARS:
            self._drop(line, "empty point")
            return None
        if len(point.split()) > MAX_POINT_WORDS:
            self._drop(line, "too long")
            return None
        words = set(_WORD.findall(point.lower()))
        if any(_same_point(words, seen) for seen in self._seen):
            self._drop(line, "duplicate")
            self._stop("a repeated point (the model is looping)")
            return None
        self._seen.append(words)
        self.skeleton.points.append(point)
        if len(self.skeleton.points) >= self.max_points:
            self._stop(f"the limit of {self.max_points} points")
        return point

    def _drop(self, line: str, why: str) -> None:
        self.skeleton.dropped.append(DroppedLine(line.strip(), why))

    def _stop(self, reason: str) -> None:
        self.done = True
        self.skeleton.stop_reason = reason


def parse_skeleton(text: str, max_points: int = 10, start: str = "") -> Skeleton:
    """The whole outline `text` parsed at once (what the reader gives when fed everything)."""
    reader = SkeletonReader(max_points, start=start)
    reader.feed(text)
    reader.finish()
    return reader.skeleton


def clean_point(body: str) -> str:
    """A point without markup, surrounding quotes or trailing punctuation ("**Sleep well**:" -> "Sleep well")."""
    point = _MARKUP.sub("", body).strip().strip("\"'").strip()
    return point.rstrip(" .:;,-").strip()


def _split_marker(line: str) -> tuple[int | None, str | None]:
    """(number, rest) for a numbered line, (None, rest) for a bullet, (None, None) for anything else."""
    match = _NUMBERED.match(line)
    if match:
        return int(match.group(1)), match.group(2)
    match = _BULLET.match(line)
    if match:
        return None, match.group(1)
    return None, None


def _same_point(a: set[str], b: set[str]) -> bool:
    """Two points are the same when their words overlap almost entirely (Jaccard >= 0.75)."""
    if not a or not b:
        return a == b
    return len(a & b) / len(a | b) >= 0.75
