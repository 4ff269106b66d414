"""What gets compressed, cut into segments with roles: instruction, context passages, question.

A document is a list of segments rendered in order, each followed by its own separator. Context
segments carry a passage number (a demonstration, a retrieved passage, a paragraph): the coarse stage
drops or reorders whole passages; the fine stage prunes inside them. Segments with a fixed `rate`
(1.0 = verbatim) are the instruction, the question, `<keep>` / `<compress rate=R>` regions, and in chat
requests the messages that are left alone.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from ..text import sentence_spans
from .spans import split_markup
from .structure.blocks import no_cut_spans
from .task import find_task

Role = Literal["instruction", "context", "question"]


@dataclass
class Segment:
    text: str
    role: Role = "context"
    rate: float | None = None  # None: the budget decides; 1.0: verbatim; else this region's own rate
    passage: int | None = None  # context passages are numbered; they are ranked, dropped, reordered
    separator: str = ""  # rendered after the segment (kept with it, dropped with it)
    message: int | None = None  # index of the chat message it came from


@dataclass
class Document:
    segments: list[Segment] = field(default_factory=list)
    messages: list[dict[str, Any]] | None = None  # the original chat messages, when it came from chat

    @property
    def passages(self) -> list[Segment]:
        return [s for s in self.segments if s.passage is not None]

    def render(self, texts: Sequence[str] | None = None) -> str:
        texts = texts if texts is not None else [s.text for s in self.segments]
        return "".join(t + s.separator for t, s in zip(texts, self.segments, strict=True))


_PARAGRAPHS = re.compile(r"\n[ \t]*\n\s*")
_LINES = re.compile(r"\n")


def passages_of(text: str, *, start: int = 0, min_chars: int = 1) -> list[Segment]:
    """Context segments for free text: paragraphs (blank-line separated) if there are several, else
    lines if there are several, else the whole text as one passage."""
    for pattern in (_PARAGRAPHS, _LINES):
        pieces = _split_keeping(text, pattern)
        if len([p for p, _ in pieces if p.strip()]) >= 2:
            break
    else:
        pieces = [(text, "")]
    segments: list[Segment] = []
    for body, separator in pieces:
        if len(body) < min_chars and segments:
            segments[-1].separator += body + separator
            continue
        segments.append(Segment(body, "context", passage=start + len(segments), separator=separator))
    return segments


def finer_passages(document: Document) -> Document | None:
    """The document with the passage that holds most of its context (over 2/3 of the characters) cut into
    its lines, or into its sentences when it is one line, each piece a passage of its own; None when no
    passage dominates or it cannot be cut. Question-aware compression then ranks the pieces as passages.
    Dev figures: one relevant nq_retrieval passage (title line + text), gold answer kept 41/60 instead of
    31/60 at rate 0.5 (sentences); 10 NQ documents one per line in a chat message, 11/11 instead of 6/11
    (lines) (bench/results/compress_scores.md)."""
    passages = [(i, s) for i, s in enumerate(document.segments) if s.passage is not None and s.rate is None]
    total = sum(len(s.text) for _, s in passages)
    dominant = [(i, s) for i, s in passages if len(s.text) * 3 > total * 2]
    if not dominant:
        return None
    index, big = dominant[0]
    pieces = _split_keeping(big.text, _LINES)
    if _pieces(pieces) < 2:
        pieces = _sentences(big.text)
    if _pieces(pieces) < 2:
        return None
    pieces = _at_most(pieces, MAX_PIECES)
    segments = [replace(s) for s in document.segments[:index]]
    segments += [
        Segment(body, "context", passage=0, separator=sep, message=big.message) for body, sep in pieces
    ]
    segments[-1].separator = big.separator
    segments += [replace(s) for s in document.segments[index + 1 :]]
    for number, segment in enumerate(s for s in segments if s.passage is not None):  # renumber in order
        segment.passage = number
    return Document(segments, document.messages)


MAX_PIECES = 256  # a long document's lines are ranked in groups beyond this: ranking cost stays bounded


def _at_most(pieces: list[tuple[str, str]], most: int) -> list[tuple[str, str]]:
    """`pieces` merged into runs of neighbours so that there are at most `most` (each run keeps the
    separators inside it, and the last one's after it)."""
    if len(pieces) <= most:
        return pieces
    size = -(-len(pieces) // most)
    merged = []
    for at in range(0, len(pieces), size):
        run = pieces[at : at + size]
        body = "".join(text + sep for text, sep in run[:-1]) + run[-1][0]
        merged.append((body, run[-1][1]))
    return merged


def _sentences(text: str) -> list[tuple[str, str]]:
    """(sentence, whitespace after it) pairs that join back into `text` (`middleware.text` finds them)."""
    spans = sentence_spans(text)
    pieces: list[tuple[str, str]] = []
    at = 0
    for index, (_, end) in enumerate(spans):
        following = spans[index + 1][0] if index + 1 < len(spans) else len(text)
        pieces.append((text[at:end], text[end:following]))
        at = following
    return pieces or [(text, "")]


def _pieces(cut: list[tuple[str, str]]) -> int:
    return len([body for body, _ in cut if body.strip()])


def _split_keeping(text: str, pattern: re.Pattern[str]) -> list[tuple[str, str]]:
    """(piece, separator) pairs; never cuts inside a fenced code block or a JSON value (found on the whole
    text first: a JSON object cut into lines is no longer JSON)."""
    blocks = no_cut_spans(text)
    pieces: list[tuple[str, str]] = []
    at = 0
    for match in pattern.finditer(text):
        if any(start < match.start() < end for start, end in blocks):
            continue
        pieces.append((text[at : match.start()], match.group()))
        at = match.end()
    pieces.append((text[at:], ""))
    if pieces and not pieces[0][0]:  # text starting with a break: fold the break into nothing lost
        first_sep = pieces.pop(0)[1]
        if pieces:
            pieces[0] = (first_sep + pieces[0][0], pieces[0][1])
    return pieces


def from_text(text: str) -> Document:
    """A free text: `<keep>`/`<compress rate=R>` regions become fixed-rate segments, the rest passages."""
    segments: list[Segment] = []
    for region in split_markup(text):
        if region.rate is not None:
            segments.append(Segment(region.text, "context", rate=region.rate))
        else:
            segments.extend(
                passages_of(region.text, start=len([s for s in segments if s.passage is not None]))
            )
    return Document(segments)


def from_parts(
    context: str | Sequence[str],
    *,
    instruction: str = "",
    question: str = "",
    separator: str = "\n\n",
    context_separator: str | None = None,
) -> Document:
    """instruction + context (one text, or a list of passages/demonstrations) + question, as LLMLingua
    takes them. Parts are joined with `separator`; listed passages with `context_separator`."""
    segments: list[Segment] = []
    if instruction:
        segments.append(Segment(instruction, "instruction", rate=1.0, separator=separator))
    if isinstance(context, str):
        segments.extend(from_text(context).segments)
    else:
        joiner = separator if context_separator is None else context_separator
        for index, passage in enumerate(context):
            segments.append(Segment(passage, "context", passage=index, separator=joiner))
    if segments and segments[-1].role == "context":
        segments[-1].separator = separator if question else ""
    if question:
        segments.append(Segment(question, "question", rate=1.0))
    return Document(segments)


_TAGS = re.compile(r"</?(?:keep|compress)\b")


def from_prompt(text: str, *, instruction: str | None = None, question: str | None = None) -> Document:
    """A whole prompt: with `instruction` given, that instruction + `text` as context (as before);
    otherwise the instruction and the question found in `text` (`task.find_task`) are kept verbatim
    around the context, as `from_parts` keeps them."""
    if instruction:
        return from_parts(text, instruction=instruction)
    task = find_task(text, question)
    if _TAGS.search(task.instruction + task.question) or not task.context.strip():
        return from_text(text)  # a <keep>/<compress> tag must not end up verbatim in the output
    segments: list[Segment] = []
    if task.instruction:
        segments.append(
            Segment(task.instruction, "instruction", rate=1.0, separator=task.instruction_separator)
        )
    context = from_text(task.context).segments
    if context:
        context[-1].separator += task.question_separator
    segments += context
    if task.question:
        segments.append(Segment(task.question, "question", rate=1.0))
    return Document(segments)
