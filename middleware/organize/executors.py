"""The organize executors: "sot", "pipelined" and "auto", plugged into the pipeline through
`middleware.stages` (`organize_executors()`).

    sot        skeleton first; then every point expanded in one backend batch over a shared, warmed prefix
    pipelined  each point's expansion starts as soon as its skeleton line is complete (APAR-style)
    auto       the router picks an organized plan or plain decoding; the report says which and why

Whatever happens, the request gets an answer: a request SoT cannot serve (a completions prompt, a
conversation, n > 1, a backend without a chat template), a skeleton with fewer than 2 usable points or
a branch that fails its retry is answered with plain decoding, and `report.details["organize"]` says
why. The plan itself (skeleton, points, per-branch tokens, cached tokens, timings) is in the same place.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any, Literal

from backend import Backend, BackendError, Generation, StreamChunk, UnsupportedRequest

from ..pipeline import Context, Executor, PlainExecutor, Request
from .options import OrganizeOptions
from .ordered import Fallback, assemble, ordered_text
from .plan import PlanRecord
from .router import Router
from .run import BranchFailed, BranchSlot, OrganizedRun

Plan = Literal["sot", "pipelined"]
# What "auto" runs when the router says yes. Pipelined ends no later than SoT where extra batch rows are
# free (a GPU): only the last point starts when the skeleton ends, as in SoT; on the CPU engine the two
# measured the same (bench/results/organize.md), and pipelined streams its first point sooner.
AUTO_PLAN: Plan = "pipelined"


def organize_executors() -> dict[str, Executor]:
    router = Router()  # loads MiniLM and its weights on the first "auto" request
    return {
        "sot": OrganizeExecutor("sot"),
        "pipelined": OrganizeExecutor("pipelined"),
        "auto": OrganizeExecutor("auto", router=router),
    }


class OrganizeExecutor:
    """Runs one organize mode; `complete` returns one Generation, `stream` the answer in outline order."""

    def __init__(self, mode: Literal["sot", "pipelined", "auto"], *, router: Router | None = None) -> None:
        self.mode = mode
        self.router = router

    async def complete(self, request: Request, context: Context) -> list[Generation]:
        options = request.options.organize
        record = PlanRecord(mode="plain", requested=self.mode)
        try:
            plan, question, system = await self._choose(request, context, options, record)
            if plan is None:
                return await PlainExecutor().complete(request, context)
            record.mode = plan
            run = OrganizedRun(context.backend, request, options, record, question, system)
            generation = await (_complete_sot(run) if plan == "sot" else _complete_pipelined(run))
            return [generation]
        finally:
            _publish(record, context)

    async def stream(self, request: Request, context: Context) -> AsyncIterator[StreamChunk]:
        options = request.options.organize
        record = PlanRecord(mode="plain", requested=self.mode)
        plan, question, system = await self._choose(request, context, options, record)
        if plan is None:
            _publish(record, context)
            async for chunk in PlainExecutor().stream(request, context):
                yield chunk
            return
        record.mode = plan
        context.report.plan = plan
        run = OrganizedRun(context.backend, request, options, record, question, system)
        async for chunk in _stream(run, pipelined=plan == "pipelined", context=context):
            yield chunk

    async def _choose(
        self, request: Request, context: Context, options: OrganizeOptions, record: PlanRecord
    ) -> tuple[Plan | None, str, str | None]:
        """The plan to run (None: plain decoding, with the reason in the record) and the question."""
        found = single_question(request, context.backend)
        if isinstance(found, str):
            record.fallback = found
            return None, "", None
        question, system = found
        if self.mode != "auto":
            return self.mode, question, system
        assert self.router is not None
        decision = await asyncio.to_thread(self.router.decide, question)
        record.router = decision.as_dict()
        if not decision.use_sot:
            return None, question, system
        return options.prefer or AUTO_PLAN, question, system


def single_question(request: Request, backend: Backend) -> tuple[str, str | None] | str:
    """(question, system prompt) of a one-question chat, or the reason SoT cannot organize this request."""
    if request.messages is None or request.embeds is not None:
        return "organize needs chat messages (this request is a completions prompt or embeddings)"
    if request.n != 1:
        return f"organize writes one answer per request (n={request.n})"
    if not backend.capabilities.chat_template:
        return f"the {backend.name} backend cannot render the chat template that organize needs"
    system: str | None = None
    turns = list(request.messages)
    if turns and turns[0].get("role") in ("system", "developer"):
        system = str(turns[0].get("content") or "") or None
        turns = turns[1:]
    if len(turns) != 1 or turns[0].get("role") != "user":
        return "organize answers a single user question, not a conversation"
    question = str(turns[0].get("content") or "").strip()
    if not question:
        return "the question is empty"
    return question, system


async def _complete_sot(run: OrganizedRun) -> Generation:
    run.start_warm()
    try:
        points = [point async for point in run.skeleton_points()]
    except (BackendError, UnsupportedRequest) as error:
        await run.cancel()
        return _whole(run, await run.plain(f"the skeleton call failed: {error}"))
    if len(points) < 2:
        await run.cancel()
        return _whole(run, await run.plain(_too_few(points)))
    try:
        branches = await run.expand_batch(points)
    except (BranchFailed, UnsupportedRequest) as error:
        return _whole(run, await run.plain(f"expansion failed: {error}"))
    return _answer(run, assemble(branches))


async def _complete_pipelined(run: OrganizedRun) -> Generation:
    slots: asyncio.Queue[BranchSlot | Fallback | BaseException | None] = asyncio.Queue()
    try:
        await _produce(run, slots, pipelined=True)
        launched: list[BranchSlot] = []
        while (item := slots.get_nowait()) is not None:
            if isinstance(item, BaseException):
                raise item
            if isinstance(item, Fallback):
                return _whole(run, await run.plain(item.reason))
            launched.append(item)
        await run.finish_branches()
    except BaseException:
        await run.cancel()  # no branch keeps running for a request that is gone
        raise
    failed = [s.record.index for s in launched if s.record.error]
    if failed:
        return _whole(run, await run.plain(f"point(s) {failed} failed after a retry"))
    return _answer(run, assemble([s.record for s in launched]))


async def _produce(
    run: OrganizedRun, slots: asyncio.Queue[BranchSlot | Fallback | BaseException | None], *, pipelined: bool
) -> None:
    """Run the skeleton and launch branches (each at its line when pipelined, all at the end otherwise),
    putting their slots on `slots` in outline order, then None; or a Fallback instead."""
    run.start_warm()
    points: list[str] = []
    try:
        async for point in run.skeleton_points():
            points.append(point)
            if pipelined:
                slot = run.new_slot(len(points), point)
                run.launch(slot)
                await slots.put(slot)
    except (BackendError, UnsupportedRequest) as error:
        await run.cancel()
        await slots.put(Fallback(f"the skeleton call failed: {error}"))
        return
    if len(points) < 2:
        await run.cancel()
        await slots.put(Fallback(_too_few(points)))
        return
    run.set_point_count(len(points))
    if not pipelined:
        for index, point in enumerate(points, 1):
            slot = run.new_slot(index, point)
            run.launch(slot)
            await slots.put(slot)
    await slots.put(None)


async def _stream(run: OrganizedRun, *, pipelined: bool, context: Context) -> AsyncIterator[StreamChunk]:
    slots: asyncio.Queue[BranchSlot | Fallback | BaseException | None] = asyncio.Queue()
    producer = asyncio.create_task(_produce(run, slots, pipelined=pipelined))

    def pass_on_failure(task: asyncio.Task[None]) -> None:  # an unexpected error must not leave us waiting
        if not task.cancelled() and task.exception() is not None:
            slots.put_nowait(task.exception())

    producer.add_done_callback(pass_on_failure)
    try:
        async for piece in ordered_text(slots, run.record):
            if isinstance(piece, Fallback):
                await run.cancel()
                async for chunk in run.plain_stream(piece.reason):
                    if chunk.finish_reason is not None:
                        yield _last_chunk(run, context, chunk.text, chunk.finish_reason)
                    else:
                        yield chunk
                return
            yield StreamChunk(text=piece)
        await producer
        await run.finish_branches()
        yield _last_chunk(run, context, "", _finish_reason(run))
    finally:
        producer.cancel()
        with contextlib.suppress(BaseException):
            await producer
        await run.cancel()


def _last_chunk(run: OrganizedRun, context: Context, text: str, finish_reason: Any) -> StreamChunk:
    """The closing chunk: the report is complete before the route renders it."""
    _publish(run.record, context)
    return StreamChunk(text=text, finish_reason=finish_reason, usage=run.record.usage())


def _answer(run: OrganizedRun, text: str) -> Generation:
    record = run.record
    record.end_s = record.now()
    first = min((b.first_token_s for b in record.branches if b.first_token_s is not None), default=None)
    return Generation(
        text=text,
        finish_reason=_finish_reason(run),
        usage=record.usage(),
        time_to_first_token_s=first,
        latency_s=record.end_s,
    )


def _whole(run: OrganizedRun, plain: Generation) -> Generation:
    """A plain fallback answer, with the usage of everything this request spent."""
    plain.usage = run.record.usage()
    return plain


def _finish_reason(run: OrganizedRun) -> Literal["stop", "length"]:
    return "length" if any(b.finish_reason == "length" for b in run.record.branches) else "stop"


def _too_few(points: list[str]) -> str:
    return f"the skeleton had {len(points)} usable point{'s' if len(points) != 1 else ''} (2 needed)"


def _publish(record: PlanRecord, context: Context) -> None:
    record.end_s = record.end_s or record.now()
    context.report.plan = record.mode
    context.report.details["organize"] = record.as_dict()
    if record.fallback and record.mode == "plain":
        note = f"organize: {record.fallback}; answered with plain decoding"
        if note not in context.report.notes:
            context.report.notes.append(note)
