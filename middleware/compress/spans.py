"""Protected spans: the parts of a text that pruning must not corrupt.

Two kinds:
- *kept* spans are never touched: fenced and inline code, JSON structure (braces, brackets, colons,
  commas, quotes, keys, literals), chat-role labels at the start of a line ("User:", "Assistant:"),
  chat-template markers (`<|im_start|>`), and whatever the user wrapped in `<keep>...</keep>`;
- *atomic* spans are kept or dropped whole, never cut: numbers with their sign, separators, decimals,
  currency and attached units ("$1,200", "3.5 km", "36%", "10:30"), URLs, e-mail addresses and IDs
  (words mixing letters and digits, "ABC-123", hex hashes, UUIDs).

User regions: `<keep>...</keep>` keeps its text verbatim and `<compress rate=0.3>...</compress>` gives
its text its own rate; the tags themselves are removed from the output.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Literal

from backend.errors import InvalidRequest

SpanKind = Literal["code", "json", "role", "marker", "number", "url", "email", "id"]
KEPT_KINDS: frozenset[str] = frozenset({"code", "json", "role", "marker"})


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    kind: SpanKind

    @property
    def kept(self) -> bool:
        return self.kind in KEPT_KINDS


_FENCED = re.compile(r"```.*?(?:```|\Z)|~~~.*?(?:~~~|\Z)", re.S)
_INLINE_CODE = re.compile(r"`[^`\n]+`")
_ROLE = re.compile(r"(?im)^[ \t]*(?:system|user|assistant|human|ai|tool|developer)[ \t]*:")
_MARKER = re.compile(r"<\|[^|>\s]{1,40}\|>|</?s>")
_URL = re.compile(
    r"\b(?:https?|ftp)://[^\s<>\"'`]+[^\s<>\"'`.,;:!?)\]}]|\bwww\.[^\s<>\"'`]+[^\s<>\"'`.,;:!?)\]}]"
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
    """Non-overlapping protected spans of `text`, sorted by start. Earlier kinds win overlaps:
    code, JSON, markers, roles, URLs, e-mails, IDs, numbers."""
    taken: list[Span] = []

    def add(start: int, end: int, kind: SpanKind) -> None:
        if end <= start or any(s.start < end and start < s.end for s in taken):
            return
        taken.append(Span(start, end, kind))

    for match in _FENCED.finditer(text):
        add(match.start(), match.end(), "code")
    for match in _INLINE_CODE.finditer(text):
        add(match.start(), match.end(), "code")
    for start, end in json_spans(text):
        for piece_start, piece_end, kind in json_structure(text, start, end):
            add(piece_start, piece_end, kind)
    for pattern, kind in ((_MARKER, "marker"), (_ROLE, "role"), (_URL, "url"), (_EMAIL, "email")):
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
    return sorted(taken, key=lambda s: s.start)


def json_spans(text: str) -> list[tuple[int, int]]:
    """[start, end) of every top-level JSON object or array in `text` that parses (2+ characters)."""
    decoder = json.JSONDecoder()
    spans: list[tuple[int, int]] = []
    at = 0
    while True:
        found = re.compile(r"[\[{]").search(text, at)
        if found is None:
            return spans
        try:
            _, end = decoder.raw_decode(text, found.start())
        except ValueError:
            at = found.start() + 1
            continue
        if end - found.start() > 2 and _looks_structured(text[found.start() : end]):
            spans.append((found.start(), end))
        at = end


def _looks_structured(candidate: str) -> bool:
    # "[1]" or "[Document 3]"-like brackets in prose are not worth protecting as JSON.
    return ":" in candidate or "," in candidate


_JSON_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[{}\[\],:]|-?\d[\d.eE+-]*|true|false|null|\s+')


def json_structure(text: str, start: int, end: int) -> list[tuple[int, int, SpanKind]]:
    """Pieces of the JSON value text[start:end] to protect: punctuation, keys, numbers and literals are
    kept; a string value keeps its quotes while the words inside may be pruned."""
    pieces: list[tuple[int, int, SpanKind]] = []
    for match in _JSON_TOKEN.finditer(text, start, end):
        token = match.group()
        if token.isspace():
            continue
        if token.startswith('"'):
            rest = text[match.end() : end].lstrip()
            if rest.startswith(":") or len(token) <= 2:  # a key, or an empty string: keep whole
                pieces.append((match.start(), match.end(), "json"))
            else:
                pieces.append((match.start(), match.start() + 1, "json"))
                pieces.append((match.end() - 1, match.end(), "json"))
        else:  # punctuation, numbers and literals: dropping one would break the JSON
            pieces.append((match.start(), match.end(), "json"))
    return pieces


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
