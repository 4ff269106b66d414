"""The compressor: budget, coarse passage choice, scoring, fine pruning, and a result that says what it did.

    compressor = Compressor(LocalScorer())
    result = await compressor.compress_text(text, CompressOptions(rate=0.4))
    result = await compressor.compress_parts(passages, instruction=..., question=q,
                                             options=CompressOptions(rate=0.25, question=q))

Budget: the target (rate x original tokens, or target_tokens) is split between the fixed parts (the
instruction, the question, `<keep>` regions, chat messages left alone), regions with their own rate,
and the context, which gets the rest. Plain mode ranks passages by their perplexity and prunes them
as one pool; question-aware mode (LongLLMLingua) ranks them by relevance to the question, keeps the
most relevant first, gives each a budget that falls with its rank, and scores its tokens with the
question in front: conditional (-log p(token | question, ...)) by default, or LongLLMLingua's
contrastive scores, which kept fewer gold answers with SmolLM2 on dev (bench/results/compress.md,
compress_scores.md). Question-aware only: a passage holding most of the context is cut into its lines
(or sentences), which are ranked like passages and kept in order.
The result is re-counted with the real tokenizer and nudged until it lands within a few percent of the
target.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any

from ..tokens import TokenCounter
from . import fine
from .coarse import PassageRanker
from .document import Document, finer_passages, from_parts, from_prompt
from .options import CompressInputError, CompressOptions
from .plans import Offload, Plan, Prepared, plain_plan, question_aware_plan
from .result import CompressionResult, Piece
from .scorer import Scorer
from .units import assign_tokens, render, split_units
from .work import Work, join, pieces, render_order, separators

TOLERANCE = 0.03  # re-adjust until the count is within 3% of the target


class Compressor:
    def __init__(
        self,
        scorer: Scorer,
        *,
        ranker: PassageRanker | None = None,
        count_tokens: Callable[[str], int] | None = None,
        offload: Offload | None = None,
    ) -> None:
        self.scorer = scorer
        self._ranker = ranker
        self.count_tokens = TokenCounter.of(count_tokens or scorer.count_tokens)
        # CPU-heavy steps (segmenting, counting, ranking, selecting, rendering) run here, off the caller's
        # event loop: a worker thread by default, the service's bounded pool in the proxy.
        self.offload: Offload = offload or asyncio.to_thread

    @property
    def ranker(self) -> PassageRanker:
        if self._ranker is None:
            # retrieval's hybrid ranker (BM25 + MiniLM cosine, fused): on the retrieval set it beats cosine
            # alone (recall@5 0.991 vs 0.988) and it shares the embedder cache with the retrieval stage
            from middleware.retrieval.ranker import HybridRanker

            self._ranker = HybridRanker()
        return self._ranker

    async def compress_text(self, text: str, options: CompressOptions) -> CompressionResult:
        if not isinstance(text, str):
            raise CompressInputError("the input must be text", param="text")
        # a whole prompt keeps its task: the instruction and the question found in it stay verbatim
        document = from_prompt(text, instruction=options.instruction, question=options.question)
        return await self.compress(document, options)

    async def compress_parts(
        self,
        context: str | Sequence[str],
        options: CompressOptions,
        *,
        instruction: str = "",
        question: str = "",
        separator: str = "\n\n",
        context_separator: str | None = None,
    ) -> CompressionResult:
        """LLMLingua's call shape: the prompt is instruction + context + question (all rendered)."""
        if question and options.question is None and options.mode == "question_aware":
            options = options.model_copy(update={"question": question})
        document = from_parts(
            context,
            instruction=instruction,
            question=question,
            separator=separator,
            context_separator=context_separator,
        )
        return await self.compress(document, options)

    async def compress_messages(
        self, messages: Sequence[dict[str, Any]], options: CompressOptions
    ) -> CompressionResult:
        """Chat messages: long context is compressed; the system prompt and the last user question stay
        (unless `compress_system` / `compress_question`). `result.messages` holds the new messages."""
        from .messages import from_messages

        document, found = await self.offload(from_messages, messages, options, self.count_tokens)
        if options.mode == "question_aware" and not options.question and found:
            options = options.model_copy(update={"question": found})
        return await self.compress(document, options)

    async def compress(self, document: Document, options: CompressOptions) -> CompressionResult:
        """Prepare (segments, units, budget), run the plain or question-aware plan, prune each pool to its
        budget, then render and land on the target."""
        prepared = await self.offload(self._prepare, document, options)
        if isinstance(prepared, CompressionResult):
            return prepared
        if options.effective_mode == "question_aware":
            plan = await question_aware_plan(prepared, self.scorer, self.ranker, self.offload)
        else:
            plan = await plain_plan(prepared, self.scorer)
        return await self.offload(self._finish, prepared, plan)

    def _prepare(self, document: Document, options: CompressOptions) -> Prepared | CompressionResult:
        """Segments cut into units and counted, and the context budget; or the unchanged result when there
        is nothing to remove."""
        clock = time.perf_counter()
        mode = options.effective_mode
        question = (options.question or "").strip()
        if not any(s.text.strip() for s in document.segments):
            raise CompressInputError("there is nothing to compress: the input is empty", param="text")
        if mode == "question_aware" and not question:
            raise CompressInputError("question_aware mode needs a question", param="question")
        finer = finer_passages(document) if mode == "question_aware" else None
        document = finer or document
        original = document.render()
        works = [Work(s, split_units(s.text, keep_all=s.rate == 1.0)) for s in document.segments]
        original_tokens = self._count_works(works)
        target = options.target_for(original_tokens)
        timings = {"segment": time.perf_counter() - clock}
        unchanged = _why_unchanged(works, original_tokens, target)
        if unchanged:
            return self._unchanged(document, original, original_tokens, target, mode, timings, unchanged)
        regions = [w for w in works if w.segment.rate is not None and w.segment.rate < 1.0]
        passages = [w for w in works if w.segment.rate is None]
        notes: list[str] = []
        budget = _context_budget(works, regions, original_tokens, target, notes)
        return Prepared(
            document,
            options,
            question,
            works,
            passages,
            regions,
            original_tokens,
            target,
            budget,
            finer=finer is not None,
            timings=timings,
            notes=notes,
        )

    def _finish(self, prepared: Prepared, plan: Plan) -> CompressionResult:
        """Prune every pool to its budget, render the kept units, land on the target, say what was done."""
        clock = time.perf_counter()
        for pool, budget in plan.pools:
            masks = fine.select([w.units for w in pool], budget)
            for work, mask in zip(pool, masks, strict=True):
                work.mask = mask
        works = prepared.works
        for work in works:
            if not work.mask:  # fixed segments (all units always) and dropped passages
                work.mask = [u.always for u in work.units]
        clock = prepared.lap("select", clock)
        kept = plan.kept(prepared)
        order = render_order(works, prepared.passages, plan.kept_order, plan.dropped)
        text, messages, compressed_tokens = self._land(prepared, order, plan.dropped, kept + prepared.regions)
        prepared.lap("count", clock)
        notes, target = prepared.notes, prepared.target
        if abs(compressed_tokens - target) > 0.1 * target and not notes:
            notes.append(f"landed at {compressed_tokens} tokens for a target of {target} (protected parts)")
        if prepared.finer:
            notes.append("the main context passage was cut into lines or sentences, ranked as passages")
        return CompressionResult(
            text=text,
            original_tokens=prepared.original_tokens,
            compressed_tokens=compressed_tokens,
            target_tokens=target,
            messages=messages,
            pieces=pieces(works, plan.dropped),
            dropped_passages=sorted(w.segment.passage for w in plan.dropped if w.segment.passage is not None),
            passage_order=[w.segment.passage for w in kept if w.segment.passage is not None],
            mode=prepared.options.effective_mode,
            timings=prepared.timings,
            notes=notes,
        )

    # --- scoring --------------------------------------------------------------------------------------

    def _render(
        self, document: Document, works: list[Work], order: list[int], dropped: list[Work]
    ) -> tuple[str, list[dict[str, Any]] | None]:
        texts: dict[int, str] = {}
        for index in order:
            work = works[index]
            texts[index] = render(work.segment.text, work.units, work.mask)
        after = separators(works, order)
        if document.messages is None:
            return join([texts[i] + after[i] for i in order]), None
        contents: dict[int, list[str]] = {}
        for i in order:
            message = works[i].segment.message
            if message is not None:
                contents.setdefault(message, []).append(texts[i] + after[i])
        messages: list[dict[str, Any]] = []
        for index, original in enumerate(document.messages):
            if index in contents:
                messages.append({**original, "content": join(contents[index]).strip()})
            else:
                messages.append(dict(original))
        return "\n".join(str(m["content"]) for m in messages), messages

    def _land(
        self, prepared: Prepared, order: list[int], dropped: list[Work], adjustable: list[Work]
    ) -> tuple[str, list[dict[str, Any]] | None, int]:
        """Nudge the kept set until within TOLERANCE of the target: first on estimated counts (the kept
        units' tokens, no tokenizing), then on the rendered output counted with the real tokenizer, which
        is done once, or twice when the estimate was off."""
        document, works, target = prepared.document, prepared.works, prepared.target
        tolerance = max(2, TOLERANCE * target)
        units, masks = [w.units for w in adjustable], [w.mask for w in adjustable]
        overhead = prepared.original_tokens - sum(w.tokens for w in works)  # separators between segments
        for _ in range(4):
            gap = target - (_estimate(works, dropped, adjustable) + overhead)
            if abs(gap) <= tolerance or fine.adjust(units, masks, round(gap)) == 0:
                break
        text, messages = self._render(document, works, order, dropped)
        tokens = self._count_output(text, messages)
        for _ in range(2):
            gap = target - tokens
            if abs(gap) <= tolerance or fine.adjust(units, masks, round(gap)) == 0:
                break
            text, messages = self._render(document, works, order, dropped)
            tokens = self._count_output(text, messages)
        return text, messages, tokens

    def _count_works(self, works: list[Work]) -> int:
        """Tokenize every segment once: its count, and its units' counts from the token offsets (in the
        counting tokenizer, whatever the scorer's). The document's count is theirs plus the separators':
        a token never spans a segment boundary that is a line break or a space."""
        texts = [w.segment.text for w in works]
        encode = self.count_tokens.encode_many
        if encode is None:  # a counting function without offsets: units get the scorer's counts
            for work, tokens in zip(works, self.count_tokens.many(texts), strict=True):
                work.tokens = tokens
        else:
            for work, (ids, spans) in zip(works, encode(texts), strict=True):
                work.tokens = len(ids)
                assign_tokens(work.units, spans[:, 0], None)
                work.counted = True
        separators = list({w.segment.separator for w in works if w.segment.separator})
        sizes = dict(zip(separators, self.count_tokens.many(separators), strict=True))
        return sum(w.tokens for w in works) + sum(sizes.get(w.segment.separator, 0) for w in works)

    def _count_output(self, text: str, messages: list[dict[str, Any]] | None) -> int:
        if messages is None:
            return self.count_tokens(text)
        return sum(self.count_tokens.many([str(m.get("content") or "") for m in messages]))

    def _unchanged(
        self,
        document: Document,
        original: str,
        tokens: int,
        target: int,
        mode: str,
        timings: dict[str, float],
        note: str,
    ) -> CompressionResult:
        return CompressionResult(
            text=original
            if document.messages is None
            else "\n".join(str(m["content"]) for m in document.messages),
            original_tokens=tokens,
            compressed_tokens=tokens,
            target_tokens=target,
            messages=[dict(m) for m in document.messages] if document.messages is not None else None,
            pieces=[Piece(original, True)],
            mode=mode,
            timings=timings,
            notes=[note],
        )


# --- helpers ------------------------------------------------------------------------------------------


def _why_unchanged(works: list[Work], original_tokens: int, target: int) -> str | None:
    if target >= original_tokens:
        return "the input is already within the target; nothing was removed"
    if all(w.segment.rate == 1.0 for w in works):
        return "nothing to compress: every part is kept verbatim (system prompt, question, short messages)"
    return None


def _estimate(works: list[Work], dropped: list[Work], adjustable: list[Work]) -> float:
    """The output's tokens without rendering it: fixed segments whole, dropped ones nothing, and a pruned
    segment its tokens in the share of its units' tokens that is kept (units count in the scorer's
    tokenizer, segments in the counting one: the share carries across)."""
    total = 0.0
    pruned = set(map(id, adjustable))
    for work in works:
        if work in dropped:
            continue
        if id(work) not in pruned:
            total += work.tokens
            continue
        unit_tokens = sum(u.tokens for u in work.units)
        kept = sum(u.tokens for u, keep in zip(work.units, work.mask, strict=True) if keep)
        total += work.tokens * kept / unit_tokens if unit_tokens else work.tokens
    return total


def _context_budget(
    works: list[Work], regions: list[Work], original_tokens: int, target: int, notes: list[str]
) -> int:
    """What is left of the target for the context once the fixed parts, the regions with their own
    rate and the separators between segments are paid for (LLMLingua's budget controller)."""
    fixed = sum(w.tokens for w in works if w.segment.rate == 1.0)
    region_budget = sum(round(w.tokens * (w.segment.rate or 1.0)) for w in regions)
    overhead = max(0, original_tokens - sum(w.tokens for w in works))  # separators
    budget = target - fixed - region_budget - overhead
    if budget < 0:
        notes.append(
            f"the fixed parts alone ({fixed + overhead} tokens) exceed the target of {target}; "
            "the context was cut to its protected parts"
        )
    return max(budget, 0)
