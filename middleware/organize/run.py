"""Executing one plan: the skeleton call, the warm-up of the branches' shared prefix, and the branches.

`OrganizedRun` holds the moving parts of one organized answer and records everything in its
`PlanRecord`. The executors (`executors.py`) decide the order: SoT expands all points in one batch
once the skeleton is done; pipelined starts each point's branch as soon as its skeleton line is.

Failures: a branch that fails is retried once (continuing from whatever text it had produced); after
that the caller falls back to plain decoding. A prompt the backend refuses (UnsupportedRequest) is not
retried. Everything that happened lands in `record.events`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace

from backend import Backend, BackendError, Generation, Prompt, SamplingParams, StreamChunk, Usage

from ..pipeline import Request
from .options import OrganizeOptions
from .plan import BranchRecord, PlanRecord
from .prompts import BranchPrompts, branch_prompts, skeleton_prompt
from .skeleton import SkeletonReader

BRANCH_STOP = ["\n\n"]  # one paragraph per point: a small model drifts into other points after it
SKELETON_STOP = ["\n\n"]


class BranchFailed(Exception):
    """A branch failed twice (or once with an error that a retry cannot fix)."""


@dataclass
class BranchSlot:
    """A branch being expanded: its record and, for streaming, its text as it arrives."""

    record: BranchRecord
    prompt_text: str
    # ("delta", text) as it arrives, then ("done", "") or ("failed", why)
    deltas: asyncio.Queue[tuple[str, str]] = field(default_factory=asyncio.Queue)


class OrganizedRun:
    """One organized answer of `question` (a single user turn, with an optional system prompt)."""

    def __init__(
        self,
        backend: Backend,
        request: Request,
        options: OrganizeOptions,
        record: PlanRecord,
        question: str,
        system: str | None,
    ) -> None:
        self.backend = backend
        self.request = request
        self.options = options
        self.record = record
        self.max_tokens = request.sampling.max_tokens
        self.question, self.system = question, system
        self.skeleton = skeleton_prompt(backend, question, system, options.max_points)
        self._prompts: BranchPrompts | None = None
        self.point_count: int | None = None  # known once the skeleton is done
        self._warm: asyncio.Task[None] | None = None
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def prompts(self) -> BranchPrompts:
        """The branch prompts, built on first use: by the warm-up task, while the skeleton call is out."""
        if self._prompts is None:
            self._prompts = branch_prompts(self.backend, self.question, self.system)
        return self._prompts

    # --- the skeleton ---------------------------------------------------------------------------

    async def skeleton_points(self) -> AsyncIterator[str]:
        """Stream the skeleton and yield each usable point when its line is complete."""
        sampling = replace(self.request.sampling, max_tokens=self.options.skeleton_tokens, stop=SKELETON_STOP)
        reader = SkeletonReader(self.options.max_points)
        usage: Usage | None = None
        seen_tokens = 0
        stream = self.backend.stream(self.skeleton, sampling)
        try:
            async for chunk in stream:
                seen_tokens += len(chunk.token_ids)
                usage = chunk.usage or usage
                for point in reader.feed(chunk.text):
                    yield point
                if reader.done:
                    break  # looping, junk or enough points: stop paying for the rest
        finally:
            await _close(stream)
        for point in reader.finish():
            yield point
        self.record.skeleton = reader.skeleton
        self.record.skeleton_end_s = self.record.now()
        if usage is None:  # we stopped the stream before its last chunk
            prompt_tokens = len(self.skeleton.token_ids or [])
            usage = Usage(prompt_tokens, seen_tokens, 0)
            self.record.events.append(
                f"skeleton stopped early ({reader.skeleton.stop_reason}); its tokens are counted from "
                "the stream and its cached tokens are unknown"
            )
        self.record.skeleton_usage = usage

    def set_point_count(self, points: int) -> None:
        """The skeleton is done: later branches split the answer budget between `points` points."""
        self.point_count = points

    def budget_for(self, index: int) -> int:
        """Max tokens of point `index`: the answer budget split between the points, or, while the
        skeleton is still being written (pipelined), between `expected_points` or `index` if more."""
        points = self.point_count or max(index, self.options.expected_points)
        return self.options.point_budget(self.max_tokens, points)

    # --- the shared prefix ------------------------------------------------------------------------

    def start_warm(self) -> None:
        """Warm the branches' shared prefix while the skeleton is written (it does not depend on it)."""
        if not self.backend.capabilities.prefix_cache:
            self.record.warm = {"skipped": f"the {self.backend.name} backend has no prefix cache"}
            return
        self._warm = asyncio.create_task(self._do_warm())

    async def _do_warm(self) -> None:
        began = self.record.now()
        try:
            tokens = await self.backend.warm_prefix(self.prompts.shared)
        except Exception as error:  # a failed warm-up only costs speed
            self.record.warm = {"skipped": f"warming the shared prefix failed: {error}"}
            return
        self.record.warm = {
            "tokens": tokens,
            "start_s": round(began, 4),
            "end_s": round(self.record.now(), 4),
        }

    async def warmed(self) -> None:
        """Wait for the warm-up (if any), so that every branch finds the prefix cached."""
        if self._warm is not None:
            await self._warm

    # --- branches in one batch (SoT) --------------------------------------------------------------

    async def expand_batch(self, points: list[str]) -> list[BranchRecord]:
        """All points as one backend batch; a failed batch is retried branch by branch, once.

        Raises BranchFailed if a branch fails its retry too.
        """
        self.set_point_count(len(points))
        await self.warmed()
        slots = [self.new_slot(i, point) for i, point in enumerate(points, 1)]
        prompts = [self._prompt(slot.prompt_text) for slot in slots]
        sampling = self._sampling(self.budget_for(1))
        began = self.record.now()
        for slot in slots:
            slot.record.start_s = began
            slot.record.max_tokens = sampling.max_tokens
        try:
            generations = await self.backend.generate(prompts, sampling)
        except BackendError as error:
            self.record.events.append(
                f"the batch of {len(slots)} branches failed ({error.message}); retrying each branch once"
            )
            await asyncio.gather(
                *(
                    self._retry_alone(slot, prompt, sampling)
                    for slot, prompt in zip(slots, prompts, strict=True)
                )
            )
            failed = [s.record.index for s in slots if s.record.error]
            if failed:
                raise BranchFailed(f"point(s) {failed} failed again on retry") from error
            return [s.record for s in slots]
        for slot, generation in zip(slots, generations, strict=True):
            _fill(slot.record, generation, self.record.now())
        return [s.record for s in slots]

    async def _retry_alone(self, slot: BranchSlot, prompt: Prompt, sampling: SamplingParams) -> None:
        slot.record.retries = 1
        try:
            [generation] = await self.backend.generate([prompt], sampling)
        except BackendError as error:
            slot.record.error = error.message
            self.record.events.append(f"point {slot.record.index} failed again: {error.message}")
            return
        _fill(slot.record, generation, self.record.now())

    # --- branches one by one, streamed (pipelined, and every streamed answer) -----------------------

    def new_slot(self, index: int, point: str) -> BranchSlot:
        record = BranchRecord(
            index, point, shared_prefix_tokens=self.prompts.shared_tokens, max_tokens=self.budget_for(index)
        )
        self.record.branches.append(record)
        return BranchSlot(record, self.prompts.text_for(point))

    def launch(self, slot: BranchSlot) -> None:
        """Start expanding `slot` now, as its own streamed request (joins whatever the backend runs)."""
        self._tasks.append(asyncio.create_task(self._expand_streamed(slot)))

    async def finish_branches(self) -> None:
        """Wait for every launched branch (their failures are in their slots, not raised here)."""
        await asyncio.gather(*self._tasks)

    async def _expand_streamed(self, slot: BranchSlot) -> None:
        record = slot.record
        record.start_s = self.record.now()
        for attempt in (0, 1):
            try:
                await self._stream_once(slot)
                record.end_s = self.record.now()
                await slot.deltas.put(("done", ""))
                return
            except BackendError as error:
                if attempt == 1:
                    record.error = error.message
                    record.end_s = self.record.now()
                    self.record.events.append(f"point {record.index} failed again: {error.message}")
                    await slot.deltas.put(("failed", error.message))
                    return
                record.retries = 1
                self.record.events.append(
                    f"point {record.index} failed ({error.message}); retried, continuing its "
                    f"{record.completion_tokens} tokens"
                )
            except Exception as error:  # e.g. the backend refused the prompt: a retry would not help
                record.error = str(error)
                record.end_s = self.record.now()
                self.record.events.append(f"point {record.index} failed: {error}")
                await slot.deltas.put(("failed", str(error)))
                return

    async def _stream_once(self, slot: BranchSlot) -> None:
        """One streamed attempt; a retry continues after the text the failed attempt produced."""
        record = slot.record
        await self.warmed()
        before = record.completion_tokens
        prompt = self._prompt(slot.prompt_text + record.text)
        stream = self.backend.stream(prompt, self._sampling(record.max_tokens - before))
        try:
            async for chunk in stream:
                if chunk.text:
                    record.first_token_s = record.first_token_s or self.record.now()
                    record.text += chunk.text
                    await slot.deltas.put(("delta", chunk.text))
                record.completion_tokens += len(chunk.token_ids)  # exact once the usage arrives
                if chunk.usage is not None:
                    record.prompt_tokens += chunk.usage.prompt_tokens
                    record.cached_tokens += chunk.usage.cached_tokens
                    record.completion_tokens = before + chunk.usage.completion_tokens
                if chunk.finish_reason is not None:
                    record.finish_reason = chunk.finish_reason
        finally:
            await _close(stream)

    async def cancel(self) -> None:
        """Stop everything still running (the client went away, or we fell back)."""
        for task in [*self._tasks, *([self._warm] if self._warm else [])]:
            task.cancel()
        for task in [*self._tasks, *([self._warm] if self._warm else [])]:
            with contextlib.suppress(BaseException):
                await task

    # --- plain decoding, the fallback ---------------------------------------------------------------

    async def plain(self, reason: str) -> Generation:
        self._fall_back(reason)
        [generation] = await self.backend.generate([self.request.backend_prompt()], self.request.sampling)
        self.record.plain_usage = generation.usage
        return generation

    async def plain_stream(self, reason: str) -> AsyncIterator[StreamChunk]:
        self._fall_back(reason)
        async for chunk in self.backend.stream(self.request.backend_prompt(), self.request.sampling):
            if chunk.usage is not None:
                self.record.plain_usage = chunk.usage
            yield chunk

    def _fall_back(self, reason: str) -> None:
        self.record.fallback = reason
        self.record.mode = "plain"

    # --- helpers ----------------------------------------------------------------------------------

    def _prompt(self, text: str) -> Prompt:
        return self.prompts.prompt(self.backend, text)

    def _sampling(self, max_tokens: int) -> SamplingParams:
        return replace(self.request.sampling, max_tokens=max(max_tokens, 1), stop=BRANCH_STOP)


def _fill(record: BranchRecord, generation: Generation, now: float) -> None:
    record.text = generation.text
    record.prompt_tokens = generation.usage.prompt_tokens
    record.cached_tokens = generation.usage.cached_tokens
    record.completion_tokens = generation.usage.completion_tokens
    record.finish_reason = generation.finish_reason
    record.end_s = now
    if generation.time_to_first_token_s is not None and record.start_s is not None:
        record.first_token_s = record.start_s + generation.time_to_first_token_s


async def _close(stream: AsyncIterator[StreamChunk]) -> None:
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:
        with contextlib.suppress(Exception):
            await aclose()
