"""Protected spans: the parts of a text that pruning must not corrupt.

Three kinds:
- *kept* spans are never touched: fenced and inline code, chat-role labels at the start of a line
  ("User:", "Assistant:"), chat-template markers (`<|im_start|>`), the answer line of a chain-of-thought
  demonstration, and whatever the user wrapped in `<keep>...</keep>`; a JSON value is one span whose
  members are compressed as JSON (`structure/jsonblock.py`);
- *atomic* spans are kept or dropped whole, never cut: numbers with their sign, separators, decimals,
  currency and attached units ("$1,200", "3.5 km", "36%", "10:30"), equations ("25*2= 50"), HTML tags,
  lines of unfenced source code and markup directives (".. code-block:: bash"),
  URLs, e-mail addresses and IDs (words mixing letters and digits, "ABC-123", hex hashes, UUIDs);
- *paired* spans: an opening tag and its closing tag, two brackets, quotes or emphasis markers, are kept
  or dropped together (`structure/markup.py`).

User regions: `<keep>...</keep>` keeps its text verbatim and `<compress rate=0.3>...</compress>` gives
its text its own rate; the tags themselves are removed from the output.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from backend.errors import InvalidRequest

from .structure.blocks import FENCED, fence_json_body, json_blocks
from .structure.blocks import json_spans as json_spans  # where it used to live
from .structure.code import code_lines
from .structure.markup import DIRECTIVE, INLINE_CODE, TAG, delimiter_pairs, tag_pairs
from .structure.reasoning import ANSWER_LINE, EQUATION

SpanKind = Literal[
    "code",
    "json",
    "line",
    "role",
    "marker",
    "answer",
    "tag",
    "equation",
    "pair",
    "number",
    "url",
    "email",
    "id",
]
# kept verbatim ("json" is a whole JSON value: its own units decide what stays, see structure/jsonblock)
KEPT_KINDS: frozenset[str] = frozenset({"code", "json", "role", "marker", "answer"})


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    kind: SpanKind
    pair: int | None = None  # spans with the same pair number are kept or dropped together

    @property
    def kept(self) -> bool:
        return self.kind in KEPT_KINDS


_ROLE = re.compile(r"(?im)^[ \t]*(?:system|user|assistant|human|ai|tool|developer)[ \t]*:")
_MARKER = re.compile(r"<\|[^|>\s]{1,40}\|>|</?s>")
_URL = re.compile(
    r"\b(?:https?|ftp)://[^\s<>\"'`\[\]]+[^\s<>\"'`\[\].,;:!?)}]|\bwww\.[^\s<>\"'`\[\]]+[^\s<>\"'`\[\].,;:!?)}]"
)
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
_UNITS = (
    r"%|‰|°[CF]?|km/h|m/s|mph|kph|km|cm|mm|nm|µm|m|mi|ft|in|yd|kg|mg|µg|g|lbs?|oz|t|ml|mL|l|L|gal|"
    r"kWh|Wh|kW|MW|GW|W|V|mA|A|Hz|kHz|MHz|GHz|KB|MB|GB|TB|PB|kb|Mb|Gb|ms|µs|ns|s|sec|min|h|hrs?|"
    r"k|K|M|B|bn|x|st|nd|rd|th"
)
_SPACED_UNITS = r"%|km|cm|mm|kg|mg|lbs?|oz|ml|mL|mph|km/h|kWh|kW|KB|MB|GB|TB|GHz|MHz|Hz|°[CF]"
_NUMBER = re.compile(
    r"(?<![\w.])(?:[$€£¥₹]\s?)?[-+−]?"  # currency, sign
    r"(?:\d{1,3}(?:[,\u202f\u00a0]\d{3})+|\d+)"  # 1,200 / 1 200 / 36
    r"(?:[.,]\d+)*"  # decimals, dotted groups (1.234.567 / 3.14)
    r"(?:(?:[:/]\d+)+)?"  # 10:30 / 3/4 / 2024/01/05
    r"(?:[eE][-+]?\d+)?"
    r"(?:(?:"
    + _UNITS
    + r")(?!\w)|\s(?:"
    + _SPACED_UNITS
    + r")(?!\w))?"  # attached unit, or a symbol one space away
)
_ID = re.compile(
    r"\b(?=[\w-]*\d)(?=[\w-]*[A-Za-z])[A-Za-z0-9]+(?:[-_][A-Za-z0-9]+)*\b"  # letters and digits: ABC-123, gsm8k
    r"|\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b"
)


def protected_spans(text: str) -> list[Span]:
    """Non-overlapping protected spans of `text`, sorted by start. Earlier kinds win overlaps: code
    fences and inline code, JSON values, markers, HTML tags, roles, answer lines, equations, URLs,
    e-mails, IDs, numbers; then the paired delimiters left outside all of them."""
    taken: list[Span] = []
    busy = [False] * len(text)
    pairs = 0

    def add(start: int, end: int, kind: SpanKind, pair: int | None = None) -> bool:
        if end <= start or any(busy[start:end]):
            return False
        busy[start:end] = [True] * (end - start)
        taken.append(Span(start, end, kind, pair))
        return True

    for fence in FENCED.finditer(text):
        body = fence_json_body(text, fence.start(), fence.end())
        if body is None:
            add(fence.start(), fence.end(), "code")
        else:  # the fence lines stay verbatim, the JSON inside is compressed as JSON
            add(fence.start(), body[0], "code")
            add(body[0], body[1], "json")
            add(body[1], fence.end(), "code")
    # JSON before inline code (RST's ``literal`` inside a JSON string is string text), except a JSON
    # value written inside inline code, which is code
    codes = [m.span() for m in INLINE_CODE.finditer(text)]
    for start, end in json_blocks(text):
        if not any(a <= start and end <= b for a, b in codes):
            add(start, end, "json")
    for start, end in codes:
        add(start, end, "code")
    for start, end in code_lines(text):  # unfenced source code: whole lines
        add(start, end, "line")
    for match in DIRECTIVE.finditer(text):  # ".. code-block:: bash", "[1]: https://..."
        add(match.start(), match.end(), "line")
    for match in _MARKER.finditer(text):
        add(match.start(), match.end(), "marker")
    tags = [m.span() for m in TAG.finditer(text) if not any(busy[m.start() : m.end()])]
    paired = {}
    for open_index, close_index in tag_pairs(tags, text):
        paired[open_index] = paired[close_index] = pairs
        pairs += 1
    for index, (start, end) in enumerate(tags):
        add(start, end, "tag", paired.get(index))
    for pattern, kind in ((_ROLE, "role"), (ANSWER_LINE, "answer"), (EQUATION, "equation")):
        for match in pattern.finditer(text):
            add(match.start(), match.end(), kind)  # type: ignore[arg-type]
    for pattern, kind in ((_URL, "url"), (_EMAIL, "email")):
        for match in pattern.finditer(text):
            add(match.start(), match.end(), kind)  # type: ignore[arg-type]
    for match in _ID.finditer(text):
        if not _NUMBER.fullmatch(match.group()):  # "36km" is a number with a unit, not an ID
            add(match.start(), match.end(), "id")
    for match in _NUMBER.finditer(text):
        end = match.end()
        while end > match.start() and text[end - 1] in " \u202f\u00a0":
            end -= 1
        add(match.start(), end, "number")
    for first, second in delimiter_pairs(text, busy):
        taken.append(Span(*first, "pair", pairs))
        taken.append(Span(*second, "pair", pairs))
        pairs += 1
    return sorted(taken, key=lambda s: s.start)


# --- user markup ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Region:
    """A piece of the input text: `rate` None follows the request; 1.0 is kept verbatim (`<keep>`)."""

    text: str
    rate: float | None = None
    marked: bool = False  # came from a <keep> or <compress> tag


_TAG = re.compile(
    r"<keep>(?P<keep>.*?)</keep>|<compress(?:\s+rate\s*=\s*[\"']?(?P<rate>[^\"'\s>]+)[\"']?)?\s*>(?P<body>.*?)</compress>",
    re.S,
)


class MarkupError(InvalidRequest):
    """A `<compress rate=...>` tag with a rate outside (0, 1], or a tag left open."""


def split_markup(text: str) -> list[Region]:
    """The text cut at `<keep>` and `<compress rate=R>` tags, tags removed, in order."""
    regions: list[Region] = []
    at = 0
    for match in _TAG.finditer(text):
        if match.start() > at:
            regions.append(Region(text[at : match.start()]))
        if match.group("keep") is not None:
            regions.append(Region(match.group("keep"), 1.0, marked=True))
        else:
            regions.append(Region(match.group("body"), _region_rate(match.group("rate")), marked=True))
        at = match.end()
    if at < len(text):
        regions.append(Region(text[at:]))
    for region in regions:
        if not region.marked and re.search(r"</?(?:keep|compress)\b", region.text):
            raise MarkupError("a <keep> or <compress> tag is not closed (or is nested)")
    return [r for r in regions if r.text]


def _region_rate(raw: str | None) -> float | None:
    if raw is None:
        return None
    try:
        rate = float(raw)
    except ValueError:
        raise MarkupError(f"<compress rate={raw}>: the rate must be a number in (0, 1]") from None
    if not 0 < rate <= 1:
        raise MarkupError(f"<compress rate={raw}>: the rate must be in (0, 1]")
    return rate
