"""Text helpers shared by the stages: sentences, and where the question of a request is.

- `sentence_spans`: the sentences of a text as character spans (retrieval chunks by them, compression
  cuts a lone passage into them);
- `last_user_index`, `question_line`: where the question of a chat request is (the last user message; a
  `Question:` line). Compression's reading of a whole prompt (instruction, context, question) is
  `middleware/compress/task.py`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

# A sentence ends at . ! ? (and closing quotes or brackets) before whitespace and a capital, digit or
# opening quote; CJK full stops end one anywhere; a blank line always ends one.
_BOUNDARY = re.compile(r"""[.!?…]+[)"'\]’”]*(?=\s+[(\"'\[‘“]?[A-Z0-9])|[。！？]+|\n[ \t]*\n\s*""")
_ABBREVIATIONS = frozenset(
    [
        "mr",
        "mrs",
        "ms",
        "dr",
        "prof",
        "sr",
        "jr",
        "st",
        "vs",
        "etc",
        "no",
        "fig",
        "figs",
        "al",
        "inc",
        "ltd",
        "co",
        "corp",
        "dept",
        "est",
        "approx",
        "jan",
        "feb",
        "mar",
        "apr",
        "jun",
        "jul",
        "aug",
        "sep",
        "sept",
        "oct",
        "nov",
        "dec",
        "gen",
        "gov",
        "sen",
        "rep",
        "col",
        "lt",
        "sgt",
        "capt",
        "mt",
        "ft",
    ]
)


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) character offsets of the sentences of `text`, whitespace trimmed, in order."""
    spans: list[tuple[int, int]] = []
    start = 0
    for match in _BOUNDARY.finditer(text):
        if match.group()[0] == "." and _ends_with_abbreviation(text, match.start()):
            continue
        _add_trimmed(spans, text, start, match.end())
        start = match.end()
    _add_trimmed(spans, text, start, len(text))
    return spans


def last_user_index(messages: Sequence[dict[str, Any]]) -> int | None:
    """The index of the last user message whose content is text, or None."""
    for index in range(len(messages) - 1, -1, -1):
        message = messages[index]
        if message.get("role") == "user" and isinstance(message.get("content"), str):
            return index
    return None


def question_line(text: str) -> str | None:
    """The text of the last `Question: ...` line (lost-in-the-middle's prompts end with one), or None."""
    for line in reversed(text.splitlines()):
        if line.strip().lower().startswith("question:"):
            return line.split(":", 1)[1].strip()
    return None


def _ends_with_abbreviation(text: str, dot: int) -> bool:
    """True when the '.' at `dot` closes an abbreviation or an initial ("Dr.", "e.g.", "J.") rather than a sentence."""
    match = re.search(r"[\w.]+$", text[max(0, dot - 20) : dot])
    if match is None:
        return False
    word = match.group().lower()
    return (len(word) == 1 and word.isalpha()) or word in _ABBREVIATIONS or "." in word


def _add_trimmed(spans: list[tuple[int, int]], text: str, start: int, end: int) -> None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if start < end:
        spans.append((start, end))
