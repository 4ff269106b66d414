"""Between OpenAI bodies and the pipeline, both ways; shared by the proxy routes and the SDK."""

from __future__ import annotations

from typing import Any

from backend import SamplingParams, StreamChunk

from ..options import RequestOptions
from ..pipeline import Completion
from ..pipeline import Request as PipelineRequest
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
    PromptTokensDetails,
    TextCompletion,
    UsageOut,
    new_id,
    now,
)


def chat_request(
    body: ChatCompletionRequest, default_max_tokens: int, options: RequestOptions
) -> PipelineRequest:
    """The pipeline request for a chat body (raises ValueError for content it cannot take)."""
    return PipelineRequest(
        sampling=sampling_from(body, body.token_budget(default_max_tokens)),
        messages=[m.as_text_message() for m in body.messages],
        n=body.n,
        options=options,
    )


def chat_completion(completion: Completion, model: str) -> ChatCompletion:
    return ChatCompletion(
        id=new_id("chatcmpl"),
        created=now(),
        model=model,
        choices=[
            ChatChoice(index=i, message=AssistantMessage(content=g.text), finish_reason=g.finish_reason)
            for i, g in enumerate(completion.choices)
        ],
        usage=usage_out(completion),
        promptfold=completion.report.as_dict(),
    )


def sampling_from(body: ChatCompletionRequest | CompletionRequest, max_tokens: int) -> SamplingParams:
    return SamplingParams(
        temperature=1.0 if body.temperature is None else body.temperature,
        top_p=1.0 if body.top_p is None else body.top_p,
        max_tokens=max_tokens,
        stop=list(body.stop or []),
        seed=body.seed,
        extra=body.passthrough(),
    )


def usage_out(*completions: Completion) -> UsageOut:
    prompt = sum(c.report.prompt_tokens for c in completions)
    completion = sum(c.report.completion_tokens for c in completions)
    cached = sum(c.report.cached_tokens for c in completions)
    return UsageOut(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=prompt + completion,
        prompt_tokens_details=PromptTokensDetails(cached_tokens=cached),
    )


class ChatChunks:
    def __init__(self, model: str) -> None:
        self.id, self.created, self.model = new_id("chatcmpl"), now(), model

    def _chunk(self, choices: list[ChunkChoice], **extra: Any) -> ChatCompletionChunk:
        return ChatCompletionChunk(
            id=self.id, created=self.created, model=self.model, choices=choices, **extra
        )

    def role_chunk(self) -> ChatCompletionChunk:
        return self._chunk([ChunkChoice(delta=Delta(role="assistant", content=""))])

    def content(self, text: str) -> ChatCompletionChunk:
        return self._chunk([ChunkChoice(delta=Delta(content=text))])

    def finish(self, reason: str, report: dict[str, Any]) -> ChatCompletionChunk:
        return self._chunk([ChunkChoice(delta=Delta(), finish_reason=reason)], promptfold=report)

    def usage(self, chunk: StreamChunk) -> ChatCompletionChunk:
        assert chunk.usage is not None
        return self._chunk([], usage=usage_of_chunk(chunk))


class TextChunks:
    def __init__(self, model: str) -> None:
        self.id, self.created, self.model = new_id("cmpl"), now(), model

    def _chunk(self, choices: list[CompletionChoice], **extra: Any) -> TextCompletion:
        return TextCompletion(id=self.id, created=self.created, model=self.model, choices=choices, **extra)

    def content(self, text: str) -> TextCompletion:
        return self._chunk([CompletionChoice(index=0, text=text, finish_reason=None)])

    def finish(self, reason: str, report: dict[str, Any]) -> TextCompletion:
        return self._chunk([CompletionChoice(index=0, text="", finish_reason=reason)], promptfold=report)

    def usage(self, chunk: StreamChunk) -> TextCompletion:
        return self._chunk([], usage=usage_of_chunk(chunk))


def usage_of_chunk(chunk: StreamChunk) -> UsageOut:
    assert chunk.usage is not None
    u = chunk.usage
    return UsageOut(
        prompt_tokens=u.prompt_tokens,
        completion_tokens=u.completion_tokens,
        total_tokens=u.total_tokens,
        prompt_tokens_details=PromptTokensDetails(cached_tokens=u.cached_tokens),
    )
