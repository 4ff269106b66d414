"""Source code that is not in a fence (a pasted Python file, a JS snippet): its lines are kept or
dropped whole, so what is left is lines of the original program, never 'import collections abc'.

A line reads as code when it starts like a statement (`def`, `class`, `import`, `return`, `if ...:`,
a decorator, an assignment, a call, a closing bracket, a line ending in `{` or `;`). A region is a run
of at least MIN_CODE_LINES such lines, with the blank, comment and indented lines between them.
"""

from __future__ import annotations

import re

MIN_CODE_LINES = 3

_STATEMENT = re.compile(
    r"""[ \t]*(?:
      (?:async[ \t]+)?def[ \t]+\w+[ \t]*\(|class[ \t]+\w+[ \t]*[(:]
    | import[ \t]+[\w.]+(?:[ \t]+as[ \t]+\w+)?(?:[ \t]*,[ \t]*[\w.]+)*[ \t]*$
    | from[ \t]+[\w.]+[ \t]+import\b
    | (?:return|yield|raise|assert|pass|break|continue|global|nonlocal)\b
    | (?:if|elif|while|for|with|try|except|finally|else)\b[^\n]*:[ \t]*(?:\#.*)?$
    | @[\w.]+
    | [\w.\[\]'"]+(?:[ \t]*:[ \t]*[\w.\[\], ]+)?[ \t]*(?:[-+*/%|&^]|//|\*\*)?=[ \t]*[^=\s]
    | [\w.]+\([^\n]*\)[ \t]*[;,]?[ \t]*$
    | [)\]}][)\]},;:]*[ \t]*$
    | [^\n]*[{;][ \t]*$
    | (?:const|let|var|function|public|private|static|fn|func)[ \t]+\w+
    )""",
    re.X,
)
_CONTINUATION = re.compile(r"[ \t]+\S|[ \t]*#|[ \t]*$")  # indented, a comment, or blank


def code_lines(text: str) -> list[tuple[int, int]]:
    """[start, end) of every non-blank line (without its line break) inside a code region of `text`."""
    return [line for region in _regions(text) for line in region]


def code_regions(text: str) -> list[tuple[int, int]]:
    """[start, end) of every code region of `text`, from its first line's start to its last line's end."""
    return [(region[0][0], region[-1][1]) for region in _regions(text)]


def _regions(text: str) -> list[list[tuple[int, int]]]:
    lines: list[tuple[int, int]] = []
    at = 0
    for line in text.split("\n"):
        lines.append((at, at + len(line)))
        at += len(line) + 1
    found: list[list[tuple[int, int]]] = []
    index = 0
    while index < len(lines):
        start, end = lines[index]
        if not _STATEMENT.match(text, start, end):
            index += 1
            continue
        region, statements = [index], 1
        following = index + 1
        while following < len(lines):
            a, b = lines[following]
            if _STATEMENT.match(text, a, b):
                statements += 1
            elif not _CONTINUATION.match(text, a, b):
                break
            region.append(following)
            following += 1
        if statements >= MIN_CODE_LINES:
            found.append([lines[i] for i in region if text[lines[i][0] : lines[i][1]].strip()])
        index = following
    return found
