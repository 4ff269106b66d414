"""Structured blocks found on the whole text, before anything cuts it: fenced code, JSON values and
unfenced source code.

Passages, lines and sentences are never cut inside a block (`no_cut_spans`); units are built per block
(`json_blocks` for the JSON ones). A fenced block whose body is one JSON value is JSON: its fence lines
stay verbatim and the body is compressed as JSON.
"""

from __future__ import annotations

import json
import re

from .code import code_regions

FENCED = re.compile(r"```.*?(?:```|\Z)|~~~.*?(?:~~~|\Z)", re.S)
_OPENER = re.compile(r"[\[{]")


def json_spans(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """[start, end) of every top-level JSON object or array in text[start:end] that parses, found left to
    right with the standard library's decoder (a value inside another is part of it)."""
    end = len(text) if end is None else end
    decoder = json.JSONDecoder()
    spans: list[tuple[int, int]] = []
    at = start
    while True:
        found = _OPENER.search(text, at, end)
        if found is None:
            return spans
        try:
            _, stop = decoder.raw_decode(text[:end], found.start())
        except (ValueError, RecursionError):
            at = found.start() + 1
            continue
        if stop - found.start() > 2 and _looks_structured(text[found.start() : stop]):
            spans.append((found.start(), stop))
        at = stop


def _looks_structured(candidate: str) -> bool:
    # "[1]" or "[Document 3]"-like brackets in prose are not worth treating as JSON.
    return ":" in candidate or "," in candidate


def json_blocks(text: str) -> list[tuple[int, int]]:
    """[start, end) of the JSON values of `text`: bare ones outside code fences, and a fence's body when
    the body is one JSON value."""
    blocks: list[tuple[int, int]] = []
    at = 0
    for fence in FENCED.finditer(text):
        blocks += json_spans(text, at, fence.start())
        body = fence_json_body(text, fence.start(), fence.end())
        if body is not None:
            blocks.append(body)
        at = fence.end()
    blocks += json_spans(text, at)
    return blocks


def fence_json_body(text: str, start: int, end: int) -> tuple[int, int] | None:
    first_break = text.find("\n", start, end)
    if first_break < 0:
        return None
    inner = json_spans(text, first_break + 1, end)
    if len(inner) != 1:
        return None
    body_start, body_end = inner[0]
    closing = text[body_end:end].strip()
    if text[first_break + 1 : body_start].strip() or closing not in ("```", "~~~", ""):
        return None  # the fence holds more than one JSON value
    return body_start, body_end


def no_cut_spans(text: str) -> list[tuple[int, int]]:
    """[start, end) spans no passage, line or sentence cut may fall inside: code fences, JSON values and
    unfenced source code."""
    spans = [m.span() for m in FENCED.finditer(text)]
    spans += [(s, e) for s, e in json_blocks(text) if not any(a <= s and e <= b for a, b in spans)]
    spans += [(s, e) for s, e in code_regions(text) if not any(a < e and s < b for a, b in spans)]
    return sorted(spans)
