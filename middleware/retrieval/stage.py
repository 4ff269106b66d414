"""The retrieval stage: the first input stage of the pipeline.

It acts on the request's last user message (or its text prompt) when the request has a `retrieval`
option (see `options.py`), in one of three ways:

- corpus: search a stored corpus for the question and put the passages, numbered and with their
  sources, in front of the message: "Answer using these passages ...: [1] (source: x) text ...";
- documents: the same with passages chosen from documents sent in the options;
- in-prompt: the message carries documents as `Document [i](Title: ...)` blocks (lost-in-the-middle's
  format, see `documents.py`): keep only the `top_k` (and `token_budget`) most relevant to the question.

Its report says which passages went in (ids, sources, scores, tokens) or why it did nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from backend import Backend

from ..config import Settings
from ..pipeline import Context, Request
from ..report import StageReport
from ..text import last_user_index, question_line
from ..tokens import TokenCounter
from ..user_errors import MissingDependency
from .catalog import Corpora, corpora_for
from .chunking import chunk_text
from .corpus import Passage, SearchConfig
from .documents import parse_document_prompt
from .fusion import select_under_budget
from .options import DocumentOption, RetrievalOptions
from .ranker import HybridRanker

NAME = "retrieval"
CONTEXT_HEADER = "Answer using these passages where they are relevant, and cite them as [n]:"


@dataclass
class _Target:
    """The text retrieval works on: the last user message (`message` is its index) or the text prompt."""

    text: str
    message: int | None


class RetrievalStage:
    name = NAME

    def __init__(self, backend: Backend, settings: Settings, corpora: Corpora | None = None) -> None:
        self.backend = backend
        self.settings = settings
        self.corpora = corpora or corpora_for(settings.data_dir)
        self._ranker = HybridRanker()

    async def __call__(self, request: Request, context: Context) -> tuple[Request, StageReport | None]:
        options = request.options.retrieval
        if options is None:
            return request, None
        count = context.count_tokens
        if not options.enabled:
            return request, StageReport.skipped(NAME, "retrieval is disabled for this request")
        target = _target(request)
        if target is None:
            return request, StageReport.skipped(
                NAME, "the request has no user message or text prompt to retrieve for"
            )
        require_packages(corpus=options.corpus is not None)
        if options.corpus is not None:
            text, report = await asyncio.to_thread(self._from_corpus, target, options, count)
        elif options.documents is not None:
            text, report = await asyncio.to_thread(self._from_documents, target, options, count)
        else:
            holder = _document_holder(request, target, options.min_documents)
            text, report = await asyncio.to_thread(self._in_prompt, holder, target, options, count)
            target = holder
        if text is not None:
            request = _with_text(request, target, text)
        return request, report

    # --- the three ways -----------------------------------------------------------------------------

    def _from_corpus(
        self, target: _Target, options: RetrievalOptions, count: TokenCounter
    ) -> tuple[str | None, StageReport]:
        assert options.corpus is not None
        corpus = self.corpora.get(options.corpus)
        query = _query(target.text, options)
        config = SearchConfig(mmr_lambda=options.mmr)
        found = corpus.search(query, options.top_k, config)
        details: dict[str, Any] = {"mode": "corpus", "corpus": corpus.name, "query": query}
        return self._insert(target, found, options, details, f"the corpus '{corpus.name}'", count)

    def _from_documents(
        self, target: _Target, options: RetrievalOptions, count: TokenCounter
    ) -> tuple[str | None, StageReport]:
        query = _query(target.text, options)
        passages = _chunk_documents(options.documents or [], count)
        scores = self._ranker.rank(query, [p.title + "\n" + p.text if p.title else p.text for p in passages])
        ranked = sorted(
            (replace(p, score=s) for p, s in zip(passages, scores, strict=True)), key=lambda p: -p.score
        )
        details: dict[str, Any] = {"mode": "documents", "query": query, "candidates": len(passages)}
        return self._insert(target, ranked, options, details, "the documents given", count)

    def _in_prompt(
        self, holder: _Target, target: _Target, options: RetrievalOptions, count: TokenCounter
    ) -> tuple[str | None, StageReport]:
        """Keep the best documents of `holder`; the question comes from it, or else from `target`."""
        prompt = parse_document_prompt(holder.text)
        found = len(prompt.documents) if prompt else 0
        if prompt is None or found < options.min_documents:
            return None, StageReport.skipped(
                NAME,
                f"no corpus, no documents option, and {found} 'Document [i](Title: ...)' blocks in the "
                f"messages (at least {options.min_documents} needed to select from)",
            )
        if holder.message == target.message:
            question = options.query or prompt.question
        else:  # documents in a system message, the question in the last user message
            question = _query(target.text, options)
        if not question.strip():
            return None, StageReport.skipped(NAME, "no question found to rank the prompt's documents by")
        scores = self._ranker.rank(question, [d.ranked_text() for d in prompt.documents])
        order = sorted(range(found), key=lambda i: -scores[i])
        tokens = [count(prompt.documents[i].render(0)) for i in order]
        keep = [order[i] for i in select_under_budget(tokens, options.token_budget, options.top_k)]
        if options.order == "original":
            keep.sort()
        text = prompt.with_documents([prompt.documents[i] for i in keep])
        kept = [
            {
                "number": prompt.documents[i].number,
                "title": prompt.documents[i].title,
                "score": round(scores[i], 6),
                "tokens": tokens[order.index(i)],
            }
            for i in keep
        ]
        report = StageReport(
            NAME,
            applied=True,
            tokens_in=count(holder.text),
            tokens_out=count(text),
            details={
                "mode": "in_prompt",
                "message": holder.message,
                "question": question,
                "documents": found,
                "kept": kept,
                "dropped": sorted(prompt.documents[i].number for i in set(range(found)) - set(keep)),
            },
        )
        return text, report

    # --- helpers ------------------------------------------------------------------------------------

    def _insert(
        self,
        target: _Target,
        ranked: Sequence[Passage],
        options: RetrievalOptions,
        details: dict[str, Any],
        where: str,
        count: TokenCounter,
    ) -> tuple[str | None, StageReport]:
        chosen = [
            ranked[i]
            for i in select_under_budget([p.tokens for p in ranked], options.token_budget, options.top_k)
        ]
        if not chosen:
            reason = f"{where} gave no passage" + (
                f" that fits the token budget of {options.token_budget}" if ranked else ""
            )
            return None, StageReport.skipped(NAME, reason, **details)
        text = render_context(chosen) + "\n\n" + target.text
        details["passages"] = [
            {
                "rank": rank,
                "chunk_id": p.chunk_id,
                "document_id": p.document_id,
                "source": p.source,
                "start": p.start,
                "end": p.end,
                "score": round(p.score, 6),
                "tokens": p.tokens,
            }
            for rank, p in enumerate(chosen, start=1)
        ]
        details["context_tokens"] = sum(p.tokens for p in chosen)
        report = StageReport(
            NAME,
            applied=True,
            tokens_in=count(target.text),
            tokens_out=count(text),
            details=details,
        )
        return text, report


def render_context(passages: Sequence[Passage]) -> str:
    """The preamble put in front of the user's message: numbered passages with their sources."""
    lines = [CONTEXT_HEADER]
    for number, passage in enumerate(passages, start=1):
        text = " ".join(passage.text.split())  # one line per passage
        lines.append(f"[{number}] (source: {passage.source}) {text}")
    return "\n".join(lines)


def require_packages(*, corpus: bool) -> None:
    """Retrieval needs bm25s (lexical ranking), and faiss for a stored corpus: say which is missing (501)
    instead of ignoring the option."""
    import importlib.util

    needed = ["bm25s", "faiss"] if corpus else ["bm25s"]
    missing = [name for name in needed if importlib.util.find_spec(name) is None]
    if missing:
        packages = " and ".join({"faiss": "faiss-cpu"}.get(name, name) for name in missing)
        raise MissingDependency(
            f"retrieval needs the Python package {packages}, which is not installed on this server "
            f"(pip install {packages.replace(' and ', ' ')})",
            param="promptfold.retrieval",
        )


def _target(request: Request) -> _Target | None:
    if request.messages is not None:
        index = last_user_index(request.messages)
        return None if index is None else _Target(request.messages[index]["content"], index)
    if isinstance(request.prompt, str):
        return _Target(request.prompt, None)
    return None


def _document_holder(request: Request, target: _Target, min_documents: int) -> _Target:
    """Where a prompt's documents are: the last user message if it has enough `Document [i]` blocks,
    else the latest system or user message that has, else the last user message."""
    if request.messages is None or _block_count(target.text) >= min_documents:
        return target
    for index in range(len(request.messages) - 1, -1, -1):
        message = request.messages[index]
        content = message.get("content")
        if message.get("role") not in ("system", "user") or not isinstance(content, str):
            continue
        if _block_count(content) >= min_documents:
            return _Target(content, index)
    return target


def _block_count(text: str) -> int:
    prompt = parse_document_prompt(text)
    return len(prompt.documents) if prompt else 0


def _with_text(request: Request, target: _Target, text: str) -> Request:
    if target.message is None:
        return replace(request, prompt=text)
    messages = list(request.messages or [])
    messages[target.message] = {**messages[target.message], "content": text}
    return replace(request, messages=messages)


def _query(text: str, options: RetrievalOptions) -> str:
    """What to search for: the `query` option, else a `Question:` line of the message, else all of it."""
    if options.query is not None:
        return options.query
    prompt = parse_document_prompt(text)
    if prompt is not None and prompt.question:
        return prompt.question
    return question_line(text) or text


def _chunk_documents(documents: Sequence[DocumentOption | str], count: TokenCounter) -> list[Passage]:
    passages: list[Passage] = []
    for number, document in enumerate(documents, start=1):
        option = document if isinstance(document, DocumentOption) else DocumentOption(text=document)
        doc_id = option.id or f"document-{number}"
        source = option.source or option.title or doc_id
        for chunk in chunk_text(option.text, document_id=doc_id, source=source, count=count):
            passages.append(
                Passage(
                    -1,
                    doc_id,
                    source,
                    option.title or "",
                    chunk.start,
                    chunk.end,
                    chunk.text,
                    chunk.tokens,
                    0.0,
                )
            )
    return passages
