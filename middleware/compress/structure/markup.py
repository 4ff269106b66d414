"""Markup whose halves must stay together: HTML tags, inline code, paired delimiters, bidi controls.

- An HTML tag (`<a href="...">`, `<img src="x.png" alt='HTTPX'>`) is one unit, so a URL inside an
  attribute keeps its quotes and the tag its brackets; an opening tag and its closing tag are a pair.
- Inline code is one kept span, however many backticks open it (RST's ``` ``skipkeys`` ```).
- Brackets, quotes, emphasis markers (`**`, `__`, `~~`, `*`, `_`), RST substitutions (`|name|`) and bidi embeddings / isolates
  (U+202A..U+202E with U+202C, U+2066..U+2068 with U+2069) found on one line (bidi: anywhere) are
  pairs: their two halves are kept or dropped together, and a kept pair with nothing kept inside it
  is dropped at rendering.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

TAG = re.compile(r"<!--.*?-->|</?[A-Za-z][\w:.-]*(?:\s+(?:[^<>\"']|\"[^\"]*\"|'[^']*')*)?/?>", re.S)
# RST directives, comments and link targets, Markdown reference definitions: one line each
DIRECTIVE = re.compile(r"(?m)^[ \t]*(?:\.\.[ \t]+\S[^\n]*|\[[^\]\n]+\]:[ \t]+\S[^\n]*)")
INLINE_CODE = re.compile(r"(?<!`)(`+)(?!`)[^\n]+?(?<!`)\1(?!`)")
_VOID = frozenset(
    [
        "area",
        "base",
        "br",
        "col",
        "embed",
        "hr",
        "img",
        "input",
        "link",
        "meta",
        "param",
        "source",
        "track",
        "wbr",
    ]
)  # HTML elements that have no closing tag
_TAG_NAME = re.compile(r"</?([A-Za-z][\w:.-]*)")
_EMPHASIS = re.compile(
    r"(?<![*\w])(\*\*)(?=\S)(?:[^\n]|\n(?![ \t]*\n))*?(?<=\S)\*\*(?![*\w])"  # may span lines
    r"|(?<![_\w])(__)(?=\S)(?:[^\n]|\n(?![ \t]*\n))*?(?<=\S)__(?![_\w])"
    r"|(?<!~)(~~)(?=\S)[^\n]*?(?<=\S)~~(?!~)"
    r"|(?<![*\w])(\*)(?=[^\s*])[^\n*]*?(?<=[^\s*])\*(?![*\w])"
    r"|(?<![_\w])(_)(?=[^\s_])[^\n_]*?(?<=[^\s_])_(?![_\w])"
    r"|(?<![|\w])(\|)(?=[^\s|])[^\n|]*?(?<=[^\s|])\|(?![|\w])"  # RST substitutions: |name|
)
_SINGLE_QUOTED = re.compile(r"(?<![\w'])'(?=\w)[^'\n]*?(?<=[\w.!?,)])'(?![\w'])")
_BRACKETS = {")": "(", "]": "[", "}": "{"}
_BIDI_OPEN = {chr(c): "\u202c" for c in range(0x202A, 0x202F) if c != 0x202C} | {
    chr(c): "\u2069" for c in range(0x2066, 0x2069)
}

Pair = tuple[tuple[int, int], tuple[int, int]]  # (open [start, end), close [start, end))


def tag_pairs(tags: Sequence[tuple[int, int]], text: str) -> list[tuple[int, int]]:
    """(open index, close index) into `tags` for each opening tag matched by its closing tag."""
    stack: list[tuple[str, int]] = []
    pairs: list[tuple[int, int]] = []
    for index, (start, end) in enumerate(tags):
        tag = text[start:end]
        name = _TAG_NAME.match(tag)
        if name is None or tag.endswith("/>"):
            continue
        lowered = name.group(1).lower()
        if tag.startswith("</"):
            for depth in range(len(stack) - 1, -1, -1):
                if stack[depth][0] == lowered:
                    pairs.append((stack[depth][1], index))
                    del stack[depth:]
                    break
        elif lowered not in _VOID:
            stack.append((lowered, index))
    return pairs


def delimiter_pairs(text: str, taken: list[bool]) -> list[Pair]:
    """Paired delimiters of `text` outside the characters marked in `taken` (which this marks)."""
    pairs: list[Pair] = []

    def free(start: int, end: int) -> bool:
        return not any(taken[start:end])

    def claim(pair: Pair) -> None:
        for start, end in pair:
            for i in range(start, end):
                taken[i] = True
        pairs.append(pair)

    for match in _EMPHASIS.finditer(text):
        width = len(next(g for g in match.groups() if g))
        pair = ((match.start(), match.start() + width), (match.end() - width, match.end()))
        if free(*pair[0]) and free(*pair[1]):
            claim(pair)
    for match in _SINGLE_QUOTED.finditer(text):
        pair = ((match.start(), match.start() + 1), (match.end() - 1, match.end()))
        if free(*pair[0]) and free(*pair[1]):
            claim(pair)
    line_start = 0
    for line in text.split("\n"):
        if _DELIMITER.search(line):
            _line_pairs(line, line_start, taken, claim)
        line_start += len(line) + 1
    stack: list[tuple[int, str]] = []
    for found in _BIDI.finditer(text):
        index, char = found.start(), found.group()
        if taken[index]:
            continue
        if char in _BIDI_OPEN:
            stack.append((index, _BIDI_OPEN[char]))
        elif char in ("\u202c", "\u2069"):
            for depth in range(len(stack) - 1, -1, -1):
                if stack[depth][1] == char:
                    claim(((stack[depth][0], stack[depth][0] + 1), (index, index + 1)))
                    del stack[depth:]
                    break
    return pairs


_CURLY = {"“": "”", "‘": "’", "«": "»", "„": "“", "‹": "›"}
_DELIMITER = re.compile(r"[()\[\]{}\"“”‘’«»„‹›]")
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069]")


def _line_pairs(line: str, offset: int, taken: list[bool], claim: Callable[[Pair], None]) -> None:
    """Brackets (nested), straight double quotes (in turn) and curly quotes of one line."""
    brackets: list[tuple[int, str]] = []
    curly: list[tuple[int, str]] = []  # open curly quotes and the character that closes each
    straight: int | None = None
    for found in _DELIMITER.finditer(line):
        i, char = found.start(), found.group()
        at = offset + i
        if taken[at]:
            continue
        if char in "([{":
            brackets.append((at, char))
        elif char in _BRACKETS:
            if brackets and brackets[-1][1] == _BRACKETS[char]:
                start = brackets.pop()[0]
                claim(((start, start + 1), (at, at + 1)))
        elif char == '"':
            if straight is None:
                straight = at
            else:
                claim(((straight, straight + 1), (at, at + 1)))
                straight = None
        elif curly and char == curly[-1][1] and not _apostrophe(line, i):
            start = curly.pop()[0]
            claim(((start, start + 1), (at, at + 1)))
        elif char in _CURLY:
            curly.append((at, _CURLY[char]))


def _apostrophe(line: str, i: int) -> bool:
    # ’ between two letters is an apostrophe (don’t), not a closing quote
    return line[i] == "’" and 0 < i < len(line) - 1 and line[i - 1].isalnum() and line[i + 1].isalnum()
