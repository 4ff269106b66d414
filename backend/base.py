"""The Backend seam: everything above it asks for text, everything below it runs or reaches a model.

A backend takes a batch of prompts (text, chat messages, token ids or input embeddings) with sampling
parameters and returns one `Generation` per prompt. It also streams, scores prompts (prompt logprobs),
warms a shared prefix, applies the chat template, reports its health and declares what it can do in
`Capabilities`, so that a stage can check before it asks and say in its report what it skipped.

Example (runs as is on a laptop, with the packaged SmolLM2)::

    import asyncio
    from backend import open_backend, Prompt, SamplingParams

    async def main():
        backend = open_backend("local")
        [answer] = await backend.generate(
            [Prompt.from_messages([{"role": "user", "content": "What is 2+2?"}])],
            SamplingParams(temperature=0, max_tokens=24),
        )
        print(answer.text, answer.usage)
        await backend.close()

    asyncio.run(main())
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from .errors import BackendError, BackendUnavailable, InvalidRequest, UnsupportedRequest, UserError
from .sampling_params import Constraint

if TYPE_CHECKING:
    from .weights import ModelWeights

__all__ = [  # the errors live in errors.py; they are re-exported here for the engines' imports
    "Backend",
    "BackendError",
    "BackendUnavailable",
    "Capabilities",
    "ChatMessage",
    "Constraint",
    "FinishReason",
    "Generation",
    "Health",
    "InvalidRequest",
    "Prompt",
    "SamplingParams",
    "StreamChunk",
    "TokenLogprob",
    "Tokenizer",
    "ToolCall",
    "ToolCallDelta",
    "TopLogprob",
    "UnsupportedRequest",
    "Usage",
    "UserError",
    "require",
]

# "tool_calls" and "content_filter" come from remote servers (and from promptfold's tool layer); a backend
# passes on any other reason its server sent as it is, with a note.
FinishReason = Literal["stop", "length", "tool_calls", "content_filter"]
ChatMessage = dict[str, Any]  # {"role": ..., "content": ...}, as in the OpenAI API


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do. Stages check these and report what they skipped instead of failing silently."""

    batch: bool = True  # many prompts in one call are run together, not one after another
    prefix_cache: bool = False  # a prefix shared by prompts is computed once and reported as cached tokens
    prompt_logprobs: bool = False  # per-token log-probabilities of the prompt itself
    input_embeds: bool = False  # prompts given as embedding vectors (soft prompts, gists)
    token_ids: bool = False  # prompts given as token ids
    chat_template: bool = False  # the backend can render chat messages into its model's prompt text
    streaming: bool = True
    seeded_sampling: bool = False  # the same `seed` repeats the same sample
    logprobs: bool = False  # per-token logprobs of the answer, with the top alternatives
    constrained_decoding: bool = False  # SamplingParams.constraint (JSON schema, regex, choice, grammar)
    # frequency/presence/repetition penalties, logit_bias, top_k, min_p, min_tokens, stop_token_ids, ignore_eos
    sampling_penalties: bool = False
    # the backend takes OpenAI `tools` / `tool_choice` (in SamplingParams.extra) and returns parsed tool
    # calls itself (an OpenAI-compatible server); without it promptfold's tool layer renders and parses
    tool_calls: bool = False
    max_context_tokens: int | None = None


@dataclass
class SamplingParams:
    """How to decode. `max_tokens=0` only prefills (useful with prompt logprobs).

    Ranges are those of the OpenAI API and vLLM; `validate()` checks them all (see sampling_params.py).
    `top_k` None (or -1) is off; `repetition_penalty` 1 is off; `logit_bias` maps token ids to a bias in
    [-100, 100] added to the logits; `min_tokens` keeps the end-of-sequence and `stop_token_ids` tokens
    away until that many tokens were generated; `stop_token_ids` end the answer like the model's own EOS;
    `ignore_eos` keeps the model's EOS away so the answer runs to `max_tokens` (or a stop).
    `logprobs` asks for each answer token's logprob, with `top_logprobs` (0-20) best alternatives.

    `extra` carries fields the caller sent that promptfold does not interpret; a remote backend forwards
    them, the local engine lists the ones it ignored in its result. Known OpenAI/vLLM names found there
    are moved into the typed fields by `sampling_params.lift_openai_fields`.
    """

    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int = 256
    stop: list[str] = field(default_factory=list)
    seed: int | None = None
    top_k: int | None = None
    min_p: float = 0.0
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0
    repetition_penalty: float = 1.0
    logit_bias: dict[int, float] = field(default_factory=dict)
    min_tokens: int = 0
    stop_token_ids: list[int] = field(default_factory=list)
    ignore_eos: bool = False
    logprobs: bool = False
    top_logprobs: int = 0
    constraint: Constraint | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0.0

    def validate(self) -> None:
        """Raise InvalidRequest, naming the OpenAI field, for the first value out of range."""
        from .sampling_params import validate

        validate(self)


@dataclass
class Prompt:
    """One prompt in exactly one of four forms. Build it with a `from_*` constructor.

    `embeds` is a sequence of vectors of the model's hidden size (a nested list, a numpy array or a torch
    tensor of shape [tokens, hidden]); it stands for the whole prompt.
    """

    text: str | None = None
    messages: list[ChatMessage] | None = None
    token_ids: list[int] | None = None
    embeds: Any = None

    def __post_init__(self) -> None:
        given = [x is not None for x in (self.text, self.messages, self.token_ids, self.embeds)]
        if sum(given) != 1:
            raise ValueError("a Prompt holds exactly one of text, messages, token_ids or embeds")

    @classmethod
    def from_text(cls, text: str) -> Prompt:
        return cls(text=text)

    @classmethod
    def from_messages(cls, messages: Sequence[ChatMessage]) -> Prompt:
        return cls(messages=list(messages))

    @classmethod
    def from_token_ids(cls, token_ids: Sequence[int]) -> Prompt:
        return cls(token_ids=[int(t) for t in token_ids])

    @classmethod
    def from_embeds(cls, embeds: Any) -> Prompt:
        return cls(embeds=embeds)

    @property
    def kind(self) -> Literal["text", "messages", "token_ids", "embeds"]:
        if self.text is not None:
            return "text"
        if self.messages is not None:
            return "messages"
        if self.token_ids is not None:
            return "token_ids"
        return "embeds"


@dataclass
class Usage:
    """Token counts of one generation, in the backend model's tokens."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0  # prompt tokens whose KV was reused instead of computed

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.cached_tokens + other.cached_tokens,
        )


@dataclass
class TopLogprob:
    """One candidate for a position: its token, the token's text alone, and its logprob (nats)."""

    token_id: int
    token: str
    logprob: float


@dataclass
class TokenLogprob:
    """The logprob (nats) of one generated token, and the `top_logprobs` most likely tokens there.

    `token` is the token's own text; `token_id` is -1 where the server names tokens by text only (the
    OpenAI API does). The local engine reports the model's raw distribution (before temperature,
    penalties and masks), as vLLM does by default.
    """

    token_id: int
    token: str
    logprob: float
    top_logprobs: list[TopLogprob] = field(default_factory=list)


@dataclass
class ToolCall:
    """One function call the model made: `arguments` is the JSON text of the arguments, as OpenAI sends it."""

    id: str
    name: str
    arguments: str
    type: str = "function"


@dataclass
class ToolCallDelta:
    """A piece of a streamed tool call, as OpenAI sends them: the first piece of call `index` has its `id`
    and `name`, later ones add to `arguments`."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str | None = None
    type: str | None = None


@dataclass
class Generation:
    """The result for one prompt.

    `prompt_logprobs[i]` is log p(prompt token i | tokens before it), in nats, for the prompt's token ids
    `prompt_token_ids`; entries before `logprob_start` (and the very first token) are None.
    `logprobs` (when asked with `SamplingParams.logprobs`) has one entry per token of `token_ids`.
    """

    text: str
    finish_reason: FinishReason
    usage: Usage
    token_ids: list[int] = field(default_factory=list)
    prompt_token_ids: list[int] | None = None
    prompt_logprobs: list[float | None] | None = None
    logprobs: list[TokenLogprob] | None = None
    tool_calls: list[ToolCall] | None = None
    refusal: str | None = None
    time_to_first_token_s: float | None = None
    latency_s: float | None = None
    notes: list[str] = field(default_factory=list)  # e.g. sampling fields the backend ignored
    # Fields a remote server sent that the seam has no name for, by where they were: "response", "choice",
    # "message" (or "delta") and "usage"; the proxy gives them back to its client as they came.
    upstream: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class StreamChunk:
    """A piece of a streamed generation. The last chunk has `finish_reason` and `usage` set.

    `logprobs` (when asked) has one entry per token of `token_ids`. `index` says which choice of a request
    the chunk belongs to when several stream at once (n > 1); a backend's own stream is always index 0.
    """

    text: str
    token_ids: list[int] = field(default_factory=list)
    logprobs: list[TokenLogprob] | None = None
    finish_reason: FinishReason | None = None
    usage: Usage | None = None
    tool_calls: list[ToolCallDelta] | None = None
    index: int = 0
    upstream: dict[str, dict[str, Any]] = field(default_factory=dict)  # as on Generation


@dataclass
class Health:
    ok: bool
    backend: str
    model: str
    detail: str = ""


class Tokenizer(Protocol):
    """The served model's tokenizer (see `backend.tokenizer.HFTokenizer`): counts are in its tokens."""

    name: str  # the model whose tokens these are

    def encode(self, text: str) -> list[int]:
        """Token ids of `text`, no special tokens added."""
        ...

    def encode_with_offsets(self, text: str) -> tuple[Any, Any]:
        """(ids [n] int64, character spans [n, 2] int64) as numpy arrays."""
        ...

    def encode_many_with_offsets(self, texts: Sequence[str]) -> list[tuple[Any, Any]]:
        """`encode_with_offsets` of several texts in one call."""
        ...

    def decode(self, ids: Sequence[int]) -> str:
        """The text of token ids, special tokens included."""
        ...

    def token_texts(self, ids: Sequence[int]) -> list[str]:
        """Each token's own text, as logprobs name tokens."""
        ...

    def count(self, text: str) -> int: ...

    def count_many(self, texts: Sequence[str]) -> list[int]:
        """Counts of several texts in one call."""
        ...

    def render_chat(
        self,
        messages: Sequence[ChatMessage],
        *,
        add_generation_prompt: bool = True,
        tools: Sequence[dict[str, Any]] | None = None,
    ) -> str:
        """The model's prompt text (with `tools` where the template has a tools section); UnsupportedRequest
        when the model has no chat template."""
        ...

    @property
    def tool_format(self) -> str | None:
        """How the model's own template writes tool calls: "hermes" (`<tool_call>` JSON blocks), or None
        when it has no tools section."""
        ...


@runtime_checkable
class Backend(Protocol):
    """The contract every engine fulfils (local, SGLang, any OpenAI-compatible server)."""

    name: str  # "local", "sglang", "openai"
    capabilities: Capabilities

    @property
    def model_id(self) -> str:  # the model's name as clients see it in /v1/models (read-only here)
        ...

    async def generate(
        self,
        prompts: Sequence[Prompt],
        sampling: SamplingParams,
        *,
        prompt_logprobs: bool = False,
        logprob_start: int = 0,
    ) -> list[Generation]:
        """Generate for every prompt together; results are in the order of `prompts`."""
        ...

    def stream(self, prompt: Prompt, sampling: SamplingParams) -> AsyncIterator[StreamChunk]:
        """Yield the generation of one prompt piece by piece; the last chunk carries finish_reason."""
        ...

    async def warm_prefix(self, prefix: Prompt) -> int:
        """Compute and keep the KV of `prefix` so later prompts that start with it reuse it.

        Returns the number of prefix tokens now cached; raises UnsupportedRequest without a prefix cache.
        """
        ...

    def apply_chat_template(
        self, messages: Sequence[ChatMessage], *, add_generation_prompt: bool = True
    ) -> str:
        """Render messages into the model's prompt text; raises UnsupportedRequest without a template."""
        ...

    def tokenize(self, text: str) -> list[int]:
        """Token ids of `text` in the model's tokenizer, no special tokens added (count them with len)."""
        ...

    def tokenizer(self) -> Tokenizer | None:
        """The served model's tokenizer in this process, or None where it is not at hand here (a remote
        server whose model folder is elsewhere and no `tokenizer=` folder given)."""
        ...

    async def model_weights(self) -> ModelWeights | None:
        """Where the served weights are on this machine (and the loaded model, for the embedded engine),
        or None where they are out of reach (a server elsewhere, a hosted API)."""
        ...

    async def health(self) -> Health: ...

    async def close(self) -> None: ...


def require(capabilities: Capabilities, feature: str, backend_name: str) -> None:
    """Raise UnsupportedRequest unless the backend declares `feature`."""
    if not getattr(capabilities, feature):
        raise UnsupportedRequest(f"the {backend_name} backend does not support {feature.replace('_', ' ')}")
