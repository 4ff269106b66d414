"""Between OpenAI bodies and the pipeline, both ways; shared by the proxy routes and the SDK."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from backend import Generation, SamplingParams, StreamChunk, ToolCall, ToolCallDelta, Usage
from backend.sampling_params import lift_openai_fields

from ..options import RequestOptions
from ..pipeline import Completion
from ..pipeline import Request as PipelineRequest
from ..tools import tool_spec
from .logprobs import chat_logprobs
from .schemas import (
    AssistantMessage,
    ChatChoice,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChunkChoice,
    CompletionChoice,
    CompletionRequest,
    Delta,
    FunctionOut,
    PromptTokensDetails,
    TextCompletion,
    ToolCallOut,
    UsageOut,
    new_id,
    now,
)


def chat_request(
    body: ChatCompletionRequest, default_max_tokens: int, options: RequestOptions
) -> PipelineRequest:
    """The pipeline request for a chat body; InvalidRequest (a 400 naming the field) for a bad value."""
    extra: dict[str, Any] = {}
    if body.logprobs is not None:
        extra["logprobs"] = body.logprobs
    if body.top_logprobs is not None:
        extra["top_logprobs"] = body.top_logprobs
    return PipelineRequest(
        sampling=sampling_from(body, body.token_budget(default_max_tokens), extra),
        messages=[m.as_sent() for m in body.messages],
        n=body.n,
        options=options,
        tools=tool_spec(body.tools, body.tool_choice, body.parallel_tool_calls),
    )


def sampling_from(
    body: ChatCompletionRequest | CompletionRequest, max_tokens: int, extra: dict[str, Any] | None = None
) -> SamplingParams:
    """The sampling of a body, OpenAI/vLLM names lifted into typed fields and every value checked (a 400
    naming the field), before any stage runs."""
    sampling = SamplingParams(
        temperature=1.0 if body.temperature is None else body.temperature,
        top_p=1.0 if body.top_p is None else body.top_p,
        max_tokens=max_tokens,
        stop=list(body.stop or []),
        seed=body.seed,
        extra={**body.passthrough(), **(extra or {})},
    )
    sampling = lift_openai_fields(sampling)
    sampling.validate()
    return sampling


def unclaimed(model: type[BaseModel], fields: dict[str, Any] | None) -> dict[str, Any]:
    """A remote server's fields that `model` does not declare (its own win: id, usage, promptfold...)."""
    return {k: v for k, v in (fields or {}).items() if k not in model.model_fields}


def chat_completion(completion: Completion, model: str) -> ChatCompletion:
    first = completion.choices[0] if completion.choices else None
    return ChatCompletion(
        id=new_id("chatcmpl"),
        created=now(),
        model=model,
        choices=[chat_choice(i, g) for i, g in enumerate(completion.choices)],
        usage=usage_out(completion),
        promptfold=completion.report.as_dict(),
        **unclaimed(ChatCompletion, first.upstream.get("response") if first else None),
    )


def chat_choice(index: int, g: Generation) -> ChatChoice:
    content: str | None = g.text
    if g.tool_calls and not g.text.strip():
        content = None  # OpenAI sends null content with tool calls
    message = AssistantMessage(
        content=content,
        refusal=g.refusal,
        tool_calls=[tool_call_out(c) for c in g.tool_calls] if g.tool_calls else None,
        **unclaimed(AssistantMessage, g.upstream.get("message")),
    )
    return ChatChoice(
        index=index,
        message=message,
        finish_reason=g.finish_reason,
        logprobs=chat_logprobs(g.logprobs),
        **unclaimed(ChatChoice, g.upstream.get("choice")),
    )


def tool_call_out(call: ToolCall) -> ToolCallOut:
    return ToolCallOut(
        id=call.id, type=call.type, function=FunctionOut(name=call.name, arguments=call.arguments)
    )


def usage_out(*completions: Completion, upstream: dict[str, Any] | None = None) -> UsageOut:
    """The usage of one or more requests (a list of prompts): each prompt counted once."""
    prompt = sum(c.report.prompt_tokens for c in completions)
    completion = sum(c.report.completion_tokens for c in completions)
    cached = sum(c.report.cached_tokens for c in completions)
    if upstream is None and len(completions) == 1 and completions[0].choices:
        upstream = completions[0].choices[0].upstream.get("usage")
    return _usage(Usage(prompt, completion, cached), upstream)


def _usage(usage: Usage, upstream: dict[str, Any] | None) -> UsageOut:
    details = dict((upstream or {}).get("prompt_tokens_details") or {})
    details.setdefault("cached_tokens", usage.cached_tokens)
    rest = {k: v for k, v in (upstream or {}).items() if k not in UsageOut.model_fields}
    return UsageOut(
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        total_tokens=usage.total_tokens,
        prompt_tokens_details=PromptTokensDetails(**details),
        **rest,
    )


class ChatChunks:
    """The chunks of one streamed chat answer; every choice opens with a role chunk."""

    def __init__(self, model: str) -> None:
        self.id, self.created, self.model = new_id("chatcmpl"), now(), model
        self._opened: set[int] = set()

    def _chunk(self, choices: list[ChunkChoice], **extra: Any) -> ChatCompletionChunk:
        return ChatCompletionChunk(
            id=self.id, created=self.created, model=self.model, choices=choices, **extra
        )

    def role_chunk(self, index: int = 0) -> ChatCompletionChunk:
        self._opened.add(index)
        return self._chunk([ChunkChoice(index=index, delta=Delta(role="assistant", content=""))])

    def pieces(self, chunk: StreamChunk) -> list[ChatCompletionChunk]:
        """What one pipeline chunk becomes (its role chunk first, for a choice not opened yet); the
        finish is `finish()`'s."""
        out = [] if chunk.index in self._opened else [self.role_chunk(chunk.index)]
        delta = unclaimed(Delta, chunk.upstream.get("delta"))
        if chunk.text or chunk.tool_calls or chunk.logprobs or delta:
            out.append(
                self._chunk(
                    [
                        ChunkChoice(
                            index=chunk.index,
                            delta=Delta(
                                content=chunk.text or None if chunk.tool_calls else chunk.text,
                                tool_calls=[_delta_out(d) for d in chunk.tool_calls]
                                if chunk.tool_calls
                                else None,
                                **delta,
                            ),
                            logprobs=chat_logprobs(chunk.logprobs) if chunk.logprobs else None,
                            **unclaimed(ChunkChoice, chunk.upstream.get("choice")),
                        )
                    ]
                )
            )
        return out

    def content(self, text: str, index: int = 0) -> ChatCompletionChunk:
        return self._chunk([ChunkChoice(index=index, delta=Delta(content=text))])

    def finish(self, reason: str, report: dict[str, Any] | None, index: int = 0) -> ChatCompletionChunk:
        return self._chunk([ChunkChoice(index=index, delta=Delta(), finish_reason=reason)], promptfold=report)

    def usage(self, usage: UsageOut) -> ChatCompletionChunk:
        return self._chunk([], usage=usage)


def _delta_out(delta: ToolCallDelta) -> ToolCallOut:
    return ToolCallOut(
        index=delta.index,
        id=delta.id,
        type=delta.type,
        function=FunctionOut(name=delta.name, arguments=delta.arguments),
    )


class TextChunks:
    def __init__(self, model: str) -> None:
        self.id, self.created, self.model = new_id("cmpl"), now(), model

    def _chunk(self, choices: list[CompletionChoice], **extra: Any) -> TextCompletion:
        return TextCompletion(id=self.id, created=self.created, model=self.model, choices=choices, **extra)

    def content(self, text: str, index: int = 0, logprobs: dict[str, Any] | None = None) -> TextCompletion:
        return self._chunk([CompletionChoice(index=index, text=text, finish_reason=None, logprobs=logprobs)])

    def finish(self, reason: str, report: dict[str, Any] | None, index: int = 0) -> TextCompletion:
        return self._chunk([CompletionChoice(index=index, text="", finish_reason=reason)], promptfold=report)

    def usage(self, usage: UsageOut) -> TextCompletion:
        return self._chunk([], usage=usage)


def usage_of_reports(reports: list[Any], upstream: dict[str, Any] | None = None) -> UsageOut:
    """The usage of streamed requests from their reports (each prompt counted once, n choices or not)."""
    total = sum((Usage(r.prompt_tokens, r.completion_tokens, r.cached_tokens) for r in reports), Usage())
    return _usage(total, upstream)
