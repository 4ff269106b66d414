"""Runs one request through the input stages and an executor; knows nothing about HTTP.

    request ─► stages (retrieval, gist, compression; each optional) ─► executor (plain or organized)
                                                                         └─► backend

A stage is `(Request, Context) -> (Request, StageReport | None)`; it returns None when the request did
not ask for it. The executor turns the final request into backend calls. Stages and executors come
from `middleware.stages` so that this file stays the same when a stage is added.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from backend import Backend, Generation, Prompt, SamplingParams, StreamChunk, Usage
from backend.sampling_params import per_copy_seeds

from .config import Settings
from .options import RequestOptions
from .report import RequestReport, StageReport
from .streams import merged
from .tokens import TokenCounter, token_counter
from .tools import ToolSpec, check_backend, complete_choice, prompt_messages, stream_choice


@dataclass
class Request:
    """A chat request (`messages`), a completion request (`prompt`: text or token ids), or, once a stage
    replaced part of it by vectors (gists), `embeds` ([tokens, hidden]) standing for the whole prompt.

    `messages` are in OpenAI's shapes as the client sent them (tool calls, tool results, content parts);
    `tools` is what the request asks about tools; `prompt_logprobs` asks the backend to score the prompt
    (completions' `echo` with `logprobs`)."""

    sampling: SamplingParams
    messages: list[dict[str, Any]] | None = None
    prompt: str | list[int] | None = None
    embeds: Any = None
    n: int = 1
    options: RequestOptions = field(default_factory=RequestOptions)
    tools: ToolSpec | None = None
    prompt_logprobs: bool = False

    def backend_prompt(self, backend: Backend | None = None) -> Prompt:
        """The prompt for `backend`: messages go as sent to a server that takes tools itself, and as text
        messages (calls and results written in tags, see `tools.render`) to every other backend."""
        if self.embeds is not None:
            return Prompt.from_embeds(self.embeds)
        if self.messages is not None:
            if backend is not None and backend.capabilities.tool_calls:
                return Prompt.from_messages(self.messages)
            return Prompt.from_messages(prompt_messages(self.messages, None))
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
    """One backend call: `n` copies of the prompt in one batch (they share the whole prompt's KV). With
    tools, on a backend that does not take them itself, each choice runs through `tools` instead."""

    async def complete(self, request: Request, context: Context) -> list[Generation]:
        backend = context.backend
        if _tool_layer(request, backend):
            assert request.messages is not None and request.tools is not None
            samplings = per_copy_seeds([Prompt.from_text("")] * request.n, request.sampling)
            return list(
                await asyncio.gather(
                    *(complete_choice(backend, request.messages, request.tools, s) for s in samplings)
                )
            )
        prompts = [request.backend_prompt(backend)] * request.n
        return await backend.generate(
            prompts, _with_tools(request, backend), prompt_logprobs=request.prompt_logprobs
        )

    async def stream(self, request: Request, context: Context) -> AsyncIterator[StreamChunk]:
        samplings = per_copy_seeds([Prompt.from_text("")] * request.n, request.sampling)
        streams = [self._one(request, context.backend, s, i) for i, s in enumerate(samplings)]
        async for chunk in merged(streams):
            yield chunk

    async def _one(
        self, request: Request, backend: Backend, sampling: SamplingParams, index: int
    ) -> AsyncIterator[StreamChunk]:
        if _tool_layer(request, backend):
            assert request.messages is not None and request.tools is not None
            async for chunk in stream_choice(backend, request.messages, request.tools, sampling, index):
                yield chunk
            return
        prompt = request.backend_prompt(backend)
        async for chunk in backend.stream(prompt, _with_tools(replace(request, sampling=sampling), backend)):
            chunk.index = index
            yield chunk


def _tool_layer(request: Request, backend: Backend) -> bool:
    """Whether promptfold renders and parses this request's tool calls (the backend does not)."""
    if request.tools is None or not request.tools.calls_allowed or backend.capabilities.tool_calls:
        return False
    check_backend(backend)
    return True


def _with_tools(request: Request, backend: Backend) -> SamplingParams:
    """The sampling, with the request's tool fields for a server that takes tools itself."""
    if request.tools is None or not backend.capabilities.tool_calls:
        return request.sampling
    return replace(request.sampling, extra={**request.sampling.extra, **request.tools.raw})


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
            finals: dict[int, Usage] = {}  # the usage of each choice, once it finished
            async for chunk in executor.stream(request, context):
                if first and (chunk.text or chunk.tool_calls):
                    context.report.time_to_first_token_s = time.perf_counter() - started
                    first = False
                if chunk.usage is not None:
                    finals[chunk.index] = chunk.usage
                    _account(context.report, [finals[i] for i in sorted(finals)], started)
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
        if plan != "plain" and request.tools is not None and request.tools.calls_allowed:
            report.notes.append(f"plan '{plan}' does not call tools; answered with plain decoding")
            plan = "plain"
        executor = self.executors.get(plan)
        if executor is None:
            report.notes.append(
                f"plan '{plan}' is not available in this server; answered with plain decoding"
            )
            plan, executor = "plain", self.executors["plain"]
        report.plan = plan
        return executor


def _account(report: RequestReport, usages: list[Usage], started: float) -> None:
    """The request's usage from its choices': n choices share one prompt, so it counts once (as OpenAI,
    vLLM and SGLang count it); their completions add up."""
    report.prompt_tokens = usages[0].prompt_tokens if usages else 0
    report.cached_tokens = usages[0].cached_tokens if usages else 0
    report.completion_tokens = sum(u.completion_tokens for u in usages)
    report.time_s = time.perf_counter() - started
