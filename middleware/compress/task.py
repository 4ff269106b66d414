"""The task in a whole prompt: the instruction before the context and the question after it.

`compress(prompt)` gets instruction, documents and question as one text; `compress_parts` gets them
apart and keeps the first and the last verbatim. This finds them in the text, so both keep the task:

- the question is the last paragraph (blank-line separated) that holds the given question, or, when
  there is none, a short last paragraph that reads like one (a '?', a closing ':' as in 'Answer:', or a
  'Question:' / 'Q:' label);
- the instruction, only when a question was found, is a short first paragraph (at most
  INSTRUCTION_CHARS and a fifth of the context) or the lines of the first paragraph before the first
  line labelled like the question ('Question: ...' demonstrations after 'Please reference the
  following examples,').

Paragraphs are never cut inside a code fence or a JSON value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .structure.blocks import no_cut_spans

INSTRUCTION_CHARS = 600
QUESTION_SHARE = 0.25  # a question found by its looks is at most this share of the text

_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n\s*")
_LABEL = re.compile(r"^\W*(\w+)[ \t]*[:\[(]")
_LOOKS_ASKED = re.compile(r"\?|:\s*$|^\W*(?:question|q)\s*[:.]", re.I)


@dataclass
class Task:
    """`instruction + instruction_separator + context + question_separator + question` is the text."""

    instruction: str
    instruction_separator: str
    context: str
    question_separator: str
    question: str


def find_task(text: str, question: str | None = None, *, last_paragraph_asks: bool = False) -> Task:
    """Split `text` into instruction, context and question (empty strings when not found).
    `last_paragraph_asks`: the last paragraph (else line) is the question whatever its looks (a chat
    message's last paragraph)."""
    breaks = _breaks(text)
    asked_at = _question_start(text, breaks, question, last_paragraph_asks)
    if asked_at is None:
        return Task("", "", text, "", "")
    separator_start, question_start = asked_at
    head = text[:separator_start]
    instruction_end = _instruction_end(head, text[question_start:])
    if instruction_end is None:
        return Task("", "", head, text[separator_start:question_start], text[question_start:])
    end, context_start = instruction_end
    return Task(
        head[:end],
        head[end:context_start],
        head[context_start:],
        text[separator_start:question_start],
        text[question_start:],
    )


def _breaks(text: str, pattern: re.Pattern[str] = _PARAGRAPH_BREAK) -> list[tuple[int, int]]:
    blocks = no_cut_spans(text)
    return [
        m.span()
        for m in pattern.finditer(text.rstrip())
        if m.start() > 0 and not any(a < m.start() < b for a, b in blocks)
    ]


def _normal(text: str) -> str:
    return " ".join(text.lower().split())


def _question_start(
    text: str, breaks: list[tuple[int, int]], question: str | None, last_paragraph_asks: bool
) -> tuple[int, int] | None:
    """(separator start, question start) of the question part, or None."""
    if not breaks and last_paragraph_asks:
        breaks = _breaks(text, re.compile(r"\n"))
    if not breaks:
        return None
    if question and question.strip():
        wanted = _normal(question)
        for start, end in reversed(breaks):
            if wanted in _normal(text[end:]):
                if (len(text) - end) <= len(text) / 2:
                    return start, end
                break
    start, end = breaks[-1]
    last = text[end:].strip()
    if last_paragraph_asks:
        return start, end
    if len(last) <= QUESTION_SHARE * len(text) and _LOOKS_ASKED.search(last):
        return start, end
    return None


def _instruction_end(head: str, question: str) -> tuple[int, int] | None:
    """(instruction end, context start) in `head` (the text before the question), or None."""
    breaks = _breaks(head)
    first_end, next_start = breaks[0] if breaks else (len(head), len(head))
    label = _LABEL.match(question)
    if label:  # demonstrations labelled like the question start the context
        line = re.compile(rf"\n[ \t]*(?={re.escape(label.group(1))}[ \t]*[:\[(])")
        cut = line.search(head, 0, first_end)
        if cut and cut.start() > 0 and cut.start() <= INSTRUCTION_CHARS:
            return cut.start(), cut.end()
    if not breaks:
        return None
    if first_end <= INSTRUCTION_CHARS and first_end * 5 <= len(head):
        return first_end, next_start
    return None
