"""Test doubles around a real backend for the organize tests: they pass every call through to it,
except the one misbehaviour each is named for (a failing branch, a skeleton that does not parse), and
they record the calls so that a test can say how the plan was executed."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from backend import Backend, BackendError, Generation, Prompt, SamplingParams, StreamChunk, Usage
from middleware.organize.prompts import EXPAND_INSTRUCTION
from middleware.organize.skeleton import SKELETON_INSTRUCTION

_EXPAND_MARK = EXPAND_INSTRUCTION.split("{question}")[1].strip()  # "Explain this part ... sentences:"
_SKELETON_MARK = SKELETON_INSTRUCTION.split("{max_points}")[0]


@dataclass
class Call:
    kind: str  # "generate" or "stream"
    prompts: list[str]  # decoded prompt texts


@dataclass
class RecordingDouble:
    """The real backend, with every generate/stream call recorded (prompts decoded to text)."""

    inner: Backend
    calls: list[Call] = field(default_factory=list)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def text_of(self, prompt: Prompt) -> str:
        if prompt.token_ids is not None:
            return str(self.inner.loaded.tokenizer.decode(prompt.token_ids))  # type: ignore[attr-defined]
        return prompt.text or ""

    def is_branch(self, prompt: Prompt) -> bool:
        return _EXPAND_MARK in self.text_of(prompt)

    def is_skeleton(self, prompt: Prompt) -> bool:
        return _SKELETON_MARK in self.text_of(prompt)

    async def generate(
        self, prompts: Sequence[Prompt], sampling: SamplingParams, **kwargs: Any
    ) -> list[Generation]:
        self.calls.append(Call("generate", [self.text_of(p) for p in prompts]))
        return await self.inner.generate(prompts, sampling, **kwargs)

    def stream(self, prompt: Prompt, sampling: SamplingParams) -> AsyncIterator[StreamChunk]:
        self.calls.append(Call("stream", [self.text_of(prompt)]))
        return self.inner.stream(prompt, sampling)

    def branch_calls(self) -> list[Call]:
        return [c for c in self.calls if any(_EXPAND_MARK in p for p in c.prompts)]


@dataclass
class BranchFailureDouble(RecordingDouble):
    """Fails every call that holds the branch of one point (the `nth` branch prompt it sees, 1-based),
    `times` times (None: always) with a BackendError, as a crashed server would."""

    nth: int = 2
    times: int | None = 1
    failures: int = 0
    _seen: list[str] = field(default_factory=list)
    _target: str | None = None

    async def generate(
        self, prompts: Sequence[Prompt], sampling: SamplingParams, **kwargs: Any
    ) -> list[Generation]:
        if any(self._hits(p) for p in prompts):
            self.calls.append(Call("generate", [self.text_of(p) for p in prompts]))
            raise BackendError("injected failure (test double)", backend="local")
        return await super().generate(prompts, sampling, **kwargs)

    def stream(self, prompt: Prompt, sampling: SamplingParams) -> AsyncIterator[StreamChunk]:
        if self._hits(prompt):
            self.calls.append(Call("stream", [self.text_of(prompt)]))
            return _failing_stream()
        return super().stream(prompt, sampling)

    def _hits(self, prompt: Prompt) -> bool:
        if not self.is_branch(prompt):
            return False
        point = self._point_of(prompt)
        if point not in self._seen:
            self._seen.append(point)
            if len(self._seen) == self.nth:
                self._target = point
        if point != self._target or (self.times is not None and self.failures >= self.times):
            return False
        self.failures += 1
        return True

    def _point_of(self, prompt: Prompt) -> str:
        text = self.text_of(prompt)
        return text.split(_EXPAND_MARK, 1)[1].split("<|im_end|>", 1)[0].strip()


async def _failing_stream() -> AsyncIterator[StreamChunk]:
    raise BackendError("injected failure (test double)", backend="local")
    yield StreamChunk(text="")  # pragma: no cover - makes this an async generator


@dataclass
class ScriptedSkeletonDouble(RecordingDouble):
    """Answers the skeleton call with `skeleton` (what a confused model might write); all else is real."""

    skeleton: str = " Sure! Here is the outline:\nSleep is very important for everyone.\n"

    def stream(self, prompt: Prompt, sampling: SamplingParams) -> AsyncIterator[StreamChunk]:
        if self.is_skeleton(prompt):
            self.calls.append(Call("stream", [self.text_of(prompt)]))
            return self._scripted(len(prompt.token_ids or []))
        return super().stream(prompt, sampling)

    async def _scripted(self, prompt_tokens: int) -> AsyncIterator[StreamChunk]:
        for word in self.skeleton.split(" ")[1:]:
            yield StreamChunk(text=" " + word, token_ids=[0])  # one token a word: enough for a double
        words = len(self.skeleton.split())
        yield StreamChunk(text="", finish_reason="stop", usage=Usage(prompt_tokens, words, 0))
