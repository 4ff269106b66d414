"""OpenAI request and response bodies, as pydantic models. Routes only translate these to and from the
pipeline. Requests allow extra fields: the ones promptfold does not interpret pass through to the backend.

Numbers and booleans are strict, as in OpenAI's API: `"max_tokens": "16"`, `"max_tokens": true` and
`"stream": "yes"` are 400s naming the field, not silently coerced. Ranges of the sampling fields are
checked in one place, `SamplingParams.validate()` (`backend/sampling_params.py`).
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, field_validator

from ..user_errors import InvalidRequest

# Fields only the proxy reads: they are not forwarded to the backend.
PROXY_FIELDS = frozenset({"stream_options"})


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str
    text: str | None = None


class FunctionCallIn(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str
    arguments: str = "{}"


class ToolCallIn(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str | None = None
    type: str = "function"
    function: FunctionCallIn


class ChatMessageIn(BaseModel):
    """One message of the history. Any role is taken (custom ones go to the chat template as they are)."""

    model_config = ConfigDict(extra="allow")
    role: str
    content: str | list[ContentPart] | None = None
    name: str | None = None
    tool_calls: list[ToolCallIn] | None = None
    tool_call_id: str | None = None

    def as_sent(self) -> dict[str, Any]:
        """The message as the client sent it (unknown fields included), for the pipeline and the backend."""
        return self.model_dump(exclude_unset=True)

    def as_text_message(self) -> dict[str, Any]:
        """{"role", "content"} with the content flattened to text (/v1/compress works on text)."""
        texts = [self.content or ""] if not isinstance(self.content, list) else []
        for part in self.content if isinstance(self.content, list) else []:
            if part.type != "text" or part.text is None:
                raise InvalidRequest(
                    f"content parts of type '{part.type}' are not supported; send text", param="messages"
                )
            texts.append(part.text)
        return {"role": "system" if self.role == "developer" else self.role, "content": "\n".join(texts)}


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")
    include_usage: StrictBool = False


class _SamplingFields(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str | None = None  # optional, as vLLM has it: the served model
    temperature: StrictFloat | None = Field(None, ge=0, le=2)
    top_p: StrictFloat | None = Field(None, gt=0, le=1)
    stop: str | list[str] | None = None
    seed: StrictInt | None = None
    n: StrictInt = Field(1, ge=1)
    stream: StrictBool = False
    stream_options: StreamOptions | None = None
    frequency_penalty: StrictFloat | None = None
    presence_penalty: StrictFloat | None = None
    logit_bias: dict[str, StrictFloat] | None = None
    user: str | None = None
    # promptfold's own options, validated with the server defaults by the route (middleware.options)
    promptfold: dict[str, Any] | None = None

    @field_validator("stop")
    @classmethod
    def _stop_list(cls, value: str | list[str] | None) -> list[str] | None:
        if value is None:
            return None
        values = [value] if isinstance(value, str) else value
        if len(values) > 4:
            raise ValueError("at most 4 stop sequences")
        return values

    def passthrough(self) -> dict[str, Any]:
        """Fields the sampling parameters take from the body (lifted into typed fields by
        `lift_openai_fields`), and every field this model does not declare, forwarded untouched."""
        lifted = {
            name: getattr(self, name)
            for name in ("frequency_penalty", "presence_penalty", "logit_bias", "user")
            if getattr(self, name) is not None
        }
        extra = {k: v for k, v in (self.model_extra or {}).items() if k not in PROXY_FIELDS}
        return {**lifted, **extra}

    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)


class ChatCompletionRequest(_SamplingFields):
    messages: list[ChatMessageIn] = Field(min_length=1)
    max_tokens: StrictInt | None = Field(None, ge=0)
    max_completion_tokens: StrictInt | None = Field(None, ge=0)
    logprobs: StrictBool | None = None
    top_logprobs: StrictInt | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: StrictBool | None = None

    def token_budget(self, default: int) -> int:
        for value in (self.max_completion_tokens, self.max_tokens):
            if value is not None:
                return value
        return default


class CompletionRequest(_SamplingFields):
    prompt: str | list[str] | list[int] | list[list[int]]
    max_tokens: StrictInt = Field(16, ge=0)  # the OpenAI default for this route
    logprobs: StrictInt | None = Field(None, ge=0, le=20)  # alternatives per token (OpenAI: 0-5, vLLM: 20)
    echo: StrictBool = False
    best_of: StrictInt | None = Field(None, ge=1)
    suffix: str | None = None

    @field_validator("prompt")
    @classmethod
    def _not_empty(cls, value: Any) -> Any:
        if value == "" or value == [] or (isinstance(value, list) and any(p in ("", []) for p in value)):
            raise ValueError("the prompt must not be empty")
        return value

    def prompts(self) -> list[str | list[int]]:
        """The prompt as a list of single prompts (text or token ids)."""
        if isinstance(self.prompt, str):
            return [self.prompt]
        if all(isinstance(p, int) for p in self.prompt):
            return [list(self.prompt)]  # type: ignore[arg-type]
        return list(self.prompt)  # type: ignore[arg-type]


# --- responses --------------------------------------------------------------------------------------


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:24]}"


def now() -> int:
    return int(time.time())


class PromptTokensDetails(BaseModel):
    model_config = ConfigDict(extra="allow")
    cached_tokens: int = 0


class UsageOut(BaseModel):
    model_config = ConfigDict(extra="allow")  # a remote server's details (completion_tokens_details, ...)
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: PromptTokensDetails = Field(default_factory=PromptTokensDetails)


class FunctionOut(BaseModel):
    name: str | None = None
    arguments: str | None = None


class ToolCallOut(BaseModel):
    index: int | None = None  # on stream deltas only
    id: str | None = None
    type: str | None = None
    function: FunctionOut


class AssistantMessage(BaseModel):
    model_config = ConfigDict(extra="allow")  # what a remote server adds (reasoning_content, ...)
    role: Literal["assistant"] = "assistant"
    content: str | None
    refusal: str | None = None
    tool_calls: list[ToolCallOut] | None = None


class ChatChoice(BaseModel):
    model_config = ConfigDict(extra="allow")  # vLLM's stop_reason, SGLang's matched_stop, ...
    index: int
    message: AssistantMessage
    finish_reason: str
    logprobs: dict[str, Any] | None = None


class ChatCompletion(BaseModel):
    model_config = ConfigDict(extra="allow")  # system_fingerprint, prompt_logprobs, ... from the backend
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]
    usage: UsageOut
    promptfold: dict[str, Any] | None = None

    def body(self) -> dict[str, Any]:
        """The JSON body: no nulls, except a message's `content`, which OpenAI always sends."""
        data = self.model_dump(exclude_none=True)
        for choice in data["choices"]:
            choice["message"].setdefault("content", None)
        return data


class Delta(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["assistant"] | None = None
    content: str | None = None
    tool_calls: list[ToolCallOut] | None = None


class ChunkChoice(BaseModel):
    model_config = ConfigDict(extra="allow")
    index: int = 0
    delta: Delta
    finish_reason: str | None = None
    logprobs: dict[str, Any] | None = None


class ChatCompletionChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: UsageOut | None = None
    promptfold: dict[str, Any] | None = None


class CompletionChoice(BaseModel):
    model_config = ConfigDict(extra="allow")
    index: int
    text: str
    finish_reason: str | None
    logprobs: dict[str, Any] | None = None


class TextCompletion(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: UsageOut | None = None
    promptfold: dict[str, Any] | None = None


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "promptfold"
    root: str | None = None
    max_model_len: int | None = None


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class ErrorBody(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorBody
