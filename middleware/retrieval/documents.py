"""Documents carried inside a prompt, in lost-in-the-middle's format:

    Write a high-quality answer for the given question using only the provided search results ...

    Document [1](Title: Nobel Prize in Physics) The first Nobel Prize in Physics was awarded ...
    Document [2](Title: ...) ...

    Question: who got the first nobel prize in physics
    Answer:

A block starts at a line `Document [n](Title: ...)` (the title may hold balanced parentheses) and runs
to the next block; the last one runs to a `Question:` line, else to the first blank line, else to the
end. The question is the `Question:` line after the blocks, else the text after them, else the text
before them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_HEADER = re.compile(r"^Document \[(\d+)\]\(Title: ", re.MULTILINE)
_QUESTION = re.compile(r"^[ \t]*Question:[ \t]*(.+)$", re.MULTILINE | re.IGNORECASE)


@dataclass(frozen=True)
class PromptDocument:
    number: int  # as written in the prompt
    title: str
    text: str
    start: int  # where the block starts in the prompt text
    end: int  # where its text ends (trailing whitespace excluded)

    def render(self, number: int) -> str:
        return f"Document [{number}](Title: {self.title}) {self.text}"

    def ranked_text(self) -> str:
        return f"{self.title}\n{self.text}" if self.title else self.text


@dataclass(frozen=True)
class DocumentPrompt:
    text: str
    documents: list[PromptDocument]
    question: str

    @property
    def preamble(self) -> str:
        return self.text[: self.documents[0].start]

    @property
    def tail(self) -> str:
        return self.text[self.documents[-1].end :]

    def with_documents(self, keep: list[PromptDocument]) -> str:
        """The prompt with only `keep`, in the given order, renumbered from 1."""
        blocks = "\n".join(document.render(i) for i, document in enumerate(keep, start=1))
        return self.preamble + blocks + self.tail


def parse_document_prompt(text: str) -> DocumentPrompt | None:
    """The documents and question of a prompt in the format above; None if it holds no block."""
    headers = list(_HEADER.finditer(text))
    if not headers:
        return None
    documents: list[PromptDocument] = []
    for i, header in enumerate(headers):
        title_end = _closing_parenthesis(text, header.end())
        if title_end is None:
            return None
        title = text[header.end() : title_end].strip()
        body_start = title_end + 1
        limit = headers[i + 1].start() if i + 1 < len(headers) else _last_block_end(text, body_start)
        body = text[body_start:limit]
        end = body_start + len(body.rstrip())
        documents.append(PromptDocument(int(header.group(1)), title, body.strip(), header.start(), end))
    return DocumentPrompt(text, documents, _question(text, documents))


def _closing_parenthesis(text: str, start: int) -> int | None:
    """Index of the ')' that closes '(Title: ' (which ended just before `start`), on the same line."""
    depth = 1
    for position in range(start, len(text)):
        char = text[position]
        if char == "\n":
            return None
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return position
    return None


def _last_block_end(text: str, start: int) -> int:
    question = _QUESTION.search(text, start)
    if question is not None:
        return question.start()
    blank = re.compile(r"\n[ \t]*\n").search(text, start)
    return blank.start() if blank is not None else len(text)


def _question(text: str, documents: list[PromptDocument]) -> str:
    after = text[documents[-1].end :]
    match = _QUESTION.search(after)
    if match is not None:
        return match.group(1).strip()
    rest = re.sub(r"(?im)^\s*answer:\s*$", "", after).strip()
    return rest or text[: documents[0].start].strip()
