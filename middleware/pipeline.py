"""Runs one request through the input stages and an executor; knows nothing about HTTP.

    request ─► stages (retrieval, gist, compression; each optional) ─► executor (plain or organized)
                                                                         └─► backend

A stage is `(Request, Context) -> (Request, StageReport | None)`; it returns None when the request did
not ask for it. The executor turns the final request into backend calls. Stages and executors come
from `middleware.stages` so that this file stays the same when a stage is added.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from backend import Backend, Generation, Prompt, SamplingParams, StreamChunk, Usage

from .config import Settings
from .options import RequestOptions
from .report import RequestReport, StageReport
from .tokens import TokenCounter, token_counter


@dataclass
class Request:
    """A chat request (`messages`), a completion request (`prompt`: text or token ids), or, once a stage
    replaced part of it by vectors (gists), `embeds` ([tokens, hidden]) standing for the whole prompt."""

    sampling: SamplingParams
    messages: list[dict[str, Any]] | None = None
    prompt: str | list[int] | None = None
    embeds: Any = None
    n: int = 1
    options: RequestOptions = field(default_factory=RequestOptions)

    def backend_prompt(self) -> Prompt:
        if self.embeds is not None:
            return Prompt.from_embeds(self.embeds)
        if self.messages is not None:
            return Prompt.from_messages(self.messages)
        if isinstance(self.prompt, str):
            return Prompt.from_text(self.prompt)
        if self.prompt is not None:
            return Prompt.from_token_ids(self.prompt)
        raise ValueError("a request needs messages or a prompt")


@dataclass
class Context:
    """What a stage may use: the backend, the settings, the report, and the one token counter (the
    serving model's tokenizer, else SmolLM2's) that every budget is counted with."""

    backend: Backend
    settings: Settings
    report: RequestReport
    count_tokens: TokenCounter = field(default=None)  # type: ignore[assignment]  # set in __post_init__

    def __post_init__(self) -> None:
        if self.count_tokens is None:
            self.count_tokens = token_counter(self.backend)


class Stage(Protocol):
    name: str

    async def __call__(self, request: Request, context: Context) -> tuple[Request, StageReport | None]: ...


class Executor(Protocol):
    """Turns a prepared request into answers: one backend call, or an organized plan of several."""

    async def complete(self, request: Request, context: Context) -> list[Generation]: ...

    def stream(self, request: Request, context: Context) -> AsyncIterator[StreamChunk]: ...


class PlainExecutor:
    """One backend call: `n` copies of the prompt in one batch (they share the whole prompt's KV)."""

    async def complete(self, request: Request, context: Context) -> list[Generation]:
        prompts = [request.backend_prompt()] * request.n
        return await context.backend.generate(prompts, request.sampling)

    async def stream(self, request: Request, context: Context) -> AsyncIterator[StreamChunk]:
        async for chunk in context.backend.stream(request.backend_prompt(), request.sampling):
            yield chunk


@dataclass
class Completion:
    choices: list[Generation]
    report: RequestReport


@dataclass
class PreparedStream:
    """A stream whose stages already ran; `report` is complete once `chunks` is exhausted."""

    chunks: AsyncIterator[StreamChunk]
    report: RequestReport


class Pipeline:
    def __init__(
        self,
        backend: Backend,
        settings: Settings | None = None,
        *,
        stages: list[Stage] | None = None,
        executors: dict[str, Executor] | None = None,
    ) -> None:
        self.backend = backend
        self.settings = settings or Settings()
        self.stages = list(stages or [])
        self.executors: dict[str, Executor] = {"plain": PlainExecutor(), **(executors or {})}
        self._count_tokens: TokenCounter | None = None

    def count_tokens(self) -> TokenCounter:
        """The token counter every stage of this pipeline counts with (made on first use: by then a remote
        backend has answered its health check and knows its model)."""
        if self._count_tokens is None:
            self._count_tokens = token_counter(self.backend)
        return self._count_tokens

    async def complete(self, request: Request) -> Completion:
        started = time.perf_counter()
        request, context = await self._prepare(request)
        executor = self._executor(request, context.report)
        choices = await executor.complete(request, context)
        report = context.report
        _account(report, [c.usage for c in choices], started)
        report.time_to_first_token_s = min(
            (c.time_to_first_token_s for c in choices if c.time_to_first_token_s is not None), default=None
        )
        for choice in choices:
            report.notes.extend(n for n in choice.notes if n not in report.notes)
        return Completion(choices, report)

    async def stream(self, request: Request) -> PreparedStream:
        started = time.perf_counter()
        request, context = await self._prepare(request)
        executor = self._executor(request, context.report)

        async def chunks() -> AsyncIterator[StreamChunk]:
            first = True
            async for chunk in executor.stream(request, context):
                if first and chunk.text:
                    context.report.time_to_first_token_s = time.perf_counter() - started
                    first = False
                if chunk.usage is not None:
                    _account(context.report, [chunk.usage], started)
                yield chunk

        return PreparedStream(chunks(), context.report)

    async def _prepare(self, request: Request) -> tuple[Request, Context]:
        report = RequestReport(backend=self.backend.name, model=self.backend.model_id)
        context = Context(self.backend, self.settings, report, self.count_tokens())
        if request.sampling.seed is not None and not self.backend.capabilities.seeded_sampling:
            report.notes.append(
                f"the {self.backend.name} backend does not promise to repeat a sample for a seed"
            )
        if request.options.bypass:
            report.notes.append("promptfold stages bypassed by request")
            return replace(request, options=RequestOptions(bypass=True)), context
        for stage in self.stages:
            began = time.perf_counter()
            request, stage_report = await stage(request, context)
            if stage_report is not None:
                stage_report.time_s = stage_report.time_s or time.perf_counter() - began
                report.add(stage_report)
        return request, context

    def _executor(self, request: Request, report: RequestReport) -> Executor:
        plan = request.options.plan()
        executor = self.executors.get(plan)
        if executor is None:
            report.notes.append(
                f"plan '{plan}' is not available in this server; answered with plain decoding"
            )
            plan, executor = "plain", self.executors["plain"]
        report.plan = plan
        return executor


def _account(report: RequestReport, usages: list[Usage], started: float) -> None:
    total = sum(usages, Usage())
    report.prompt_tokens = total.prompt_tokens
    report.completion_tokens = total.completion_tokens
    report.cached_tokens = total.cached_tokens
    report.time_s = time.perf_counter() - started
