"""A JSON value compressed as JSON: members are kept or dropped whole, long strings are pruned inside,
and the result is re-serialised from the original text, so it always parses.

The value is walked with the standard library's decoder (`raw_decode` for every key and scalar, so
escapes and numbers are read exactly as `json.loads` reads them); the walk only adds the positions that
`json` does not report. Each member (a key with its value, or an array item) is a group of units kept or
dropped together; a nested member needs its parent kept. A string value of more than LONG_STRING_WORDS
words is pruned word by word inside its quotes (split at spaces, so an escape is never cut; the words
holding two halves of a pair, or one ``literal``, go together). A small
value (at most SMALL_MEMBERS members, an inline config) keeps all its members and prunes only inside its
strings. Rendering writes the kept members with the original separators and layout; whatever was
dropped, the text is checked with `json.loads`, and the original value is written if that ever fails.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

from .markup import INLINE_CODE, delimiter_pairs

SMALL_MEMBERS = 8
LONG_STRING_WORDS = 6

_DECODER = json.JSONDecoder()
_SPACE = re.compile(r"[ \t\n\r]*")
_STRING_WORD = re.compile(r" *[^ ]+| +$")  # JSON strings hold no raw line breaks or tabs


@dataclass
class Node:
    start: int
    end: int
    kind: Literal["object", "array", "string", "scalar"]
    members: list[Member] = field(default_factory=list)
    words: list[tuple[int, int]] = field(default_factory=list)  # a long string's word spans


@dataclass
class Member:
    start: int  # its key (in an object) or its value (in an array)
    value: Node
    lead: int  # where its units start: the comma before it, or `start` for the first member
    group: int = -1


class UnitSpec(NamedTuple):
    """What `units.py` turns into a Unit (kept here as a tuple: units.py imports this module)."""

    start: int
    end: int
    kind: str
    always: bool
    group: int | None
    parent: int | None


@dataclass(eq=False)
class JsonBlock:
    start: int
    end: int
    root: Node
    small: bool

    def render(self, text: str, kept: dict[int, bool]) -> str:
        """The value with what `kept` (unit start -> kept) says, valid JSON."""
        out: list[str] = []
        self._write(text, self.root, kept, out)
        rendered = "".join(out)
        try:
            json.loads(rendered)
        except ValueError:  # never seen; a wrong JSON would cost more than the tokens saved
            return text[self.start : self.end]
        return rendered

    def _write(self, text: str, node: Node, kept: dict[int, bool], out: list[str]) -> None:
        if node.kind == "string" and node.words:
            pieces = [text[a:b] for a, b in node.words if kept.get(a, False)]
            out.append('"' + "".join(pieces).lstrip(" ") + '"')
            return
        if node.kind in ("string", "scalar") or not node.members:
            out.append(text[node.start : node.end])
            return
        chosen = [m for m in node.members if kept.get(m.lead, False)]
        if not chosen:
            out.append(text[node.start] + text[node.end - 1])
            return
        out.append(text[node.start : node.members[0].start])  # the bracket and the layout after it
        for index, member in enumerate(chosen):
            if index:
                out.append(text[member.lead : member.start])  # ", " and the layout before it
            out.append(text[member.start : member.value.start])  # key, colon, spaces
            self._write(text, member.value, kept, out)
        out.append(text[node.members[-1].value.end : node.end])


def parse(text: str, start: int, end: int) -> JsonBlock | None:
    """The JSON value text[start:end] with positions, or None when it is not one (or nests too deep)."""
    try:
        root, stop = _value(text, start)
    except (ValueError, IndexError, RecursionError):
        return None
    if stop != end or root.kind not in ("object", "array"):
        return None
    return JsonBlock(start, end, root, small=_count(root) <= SMALL_MEMBERS)


def _skip(text: str, at: int) -> int:
    return _SPACE.match(text, at).end()  # type: ignore[union-attr]


def _value(text: str, at: int) -> tuple[Node, int]:
    char = text[at]
    if char in "{[":
        return _container(text, at, "object" if char == "{" else "array")
    _, stop = _DECODER.raw_decode(text, at)
    return Node(at, stop, "string" if char == '"' else "scalar"), stop


def _container(text: str, at: int, kind: Literal["object", "array"]) -> tuple[Node, int]:
    close = "}" if kind == "object" else "]"
    node = Node(at, at, kind)
    position = _skip(text, at + 1)
    if text[position] == close:
        node.end = position + 1
        return node, node.end
    lead = position
    while True:
        member_start = position
        if kind == "object":
            _, key_end = _DECODER.raw_decode(text, position)
            position = _skip(text, key_end)
            if text[position] != ":":
                raise ValueError("expected a colon")
            position = _skip(text, position + 1)
        value, stop = _value(text, position)
        node.members.append(Member(member_start, value, lead))
        position = _skip(text, stop)
        if text[position] == ",":
            lead = stop
            position = _skip(text, position + 1)
            continue
        if text[position] != close:
            raise ValueError("expected the end of a container")
        node.end = position + 1
        return node, node.end


def _count(node: Node) -> int:
    return sum(1 + _count(m.value) for m in node.members)


def unit_specs(text: str, block: JsonBlock, groups: list[int]) -> list[UnitSpec]:
    """Units covering text[block.start:block.end] exactly, in order. `groups` holds the next free group
    id (it is advanced)."""
    specs: list[UnitSpec] = []
    root = block.root
    if not root.members:
        return [UnitSpec(root.start, root.end, "json", True, None, None)]
    specs.append(UnitSpec(root.start, root.members[0].start, "json", True, None, None))
    for member in root.members:
        _member_specs(text, member, None, block.small, groups, specs)
    specs.append(UnitSpec(root.members[-1].value.end, root.end, "json", True, None, None))
    return specs


def _member_specs(
    text: str, member: Member, parent: int | None, small: bool, groups: list[int], out: list[UnitSpec]
) -> None:
    value = member.value
    group: int | None = None if small else groups[0]
    if group is not None:
        groups[0] += 1
        member.group = group
    always = small  # a small value keeps every member; only words inside its strings go

    def head(end: int) -> None:
        out.append(UnitSpec(member.lead, end, "json", always, group, parent))

    if value.kind == "string" and (small or _words(text, value) > LONG_STRING_WORDS):
        head(value.start + 1)
        inner_parent = group if group is not None else parent
        value.words = [w.span() for w in _STRING_WORD.finditer(text, value.start + 1, value.end - 1)]
        ties = _ties(text, value.start + 1, value.end - 1, value.words, groups)
        for index, (start, end) in enumerate(value.words):
            out.append(UnitSpec(start, end, "word", False, ties.get(index), inner_parent))
        out.append(UnitSpec(value.end - 1, value.end, "json", always, group, parent))
        return
    if value.kind in ("string", "scalar") or not value.members:
        head(value.end)
        return
    head(value.members[0].start)
    for child in value.members:
        _member_specs(text, child, group if group is not None else parent, small, groups, out)
    out.append(UnitSpec(value.members[-1].value.end, value.end, "json", always, group, parent))


def _ties(text: str, start: int, end: int, words: list[tuple[int, int]], groups: list[int]) -> dict[int, int]:
    """Words of a string value that must go together: those holding the two halves of a pair (brackets,
    quotes, emphasis) or one inline-code span (RST's ``literal`` in a description). Word index -> group."""
    content = text[start:end]
    links: list[tuple[int, int]] = []  # [start, end) in `content` whose words are tied
    for match in INLINE_CODE.finditer(content):
        links.append(match.span())
    taken = [False] * len(content)
    for a, b in links:
        taken[a:b] = [True] * (b - a)
    for first, second in delimiter_pairs(content, taken):
        links.append((first[0], second[1]))
    owner: dict[int, int] = {}
    for a, b in links:
        tied = [i for i, (ws, we) in enumerate(words) if ws - start < b and a < we - start]
        known = {owner[i] for i in tied if i in owner}
        group = min(known) if known else groups[0]
        if not known:
            groups[0] += 1
        for i, g in list(owner.items()):
            if g in known:
                owner[i] = group
        for i in tied:
            owner[i] = group
    return owner


def _words(text: str, node: Node) -> int:
    return len(text[node.start + 1 : node.end - 1].split())


def members(block: JsonBlock) -> list[tuple[Member, int]]:
    """Every member with a group (kept or dropped whole) and its depth, in document order."""
    found: list[tuple[Member, int]] = []

    def walk(node: Node, depth: int) -> None:
        for member in node.members:
            if member.group >= 0:
                found.append((member, depth))
            walk(member.value, depth + 1)

    walk(block.root, 0)
    return found
