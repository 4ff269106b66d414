"""The options of one compression, as a request's `promptfold.compress` object, CLI flags or SDK
keyword arguments. Validated here so that a bad value is a 400 (or CLI error) naming the parameter."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from backend.errors import InvalidRequest

Mode = Literal["plain", "question_aware"]


class CompressOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rate: float | None = Field(
        None, gt=0, le=1, description="compressed / original tokens wanted, in (0, 1] (default 0.5)"
    )
    target_tokens: int | None = Field(
        None, gt=0, description="tokens wanted after compression (wins over rate)"
    )
    question: str | None = Field(None, description="the question the context must still answer")
    mode: Mode | None = Field(
        None, description="plain | question_aware (default: question_aware with a question)"
    )
    instruction: str | None = Field(None, description="text kept verbatim before the context")
    coarse: bool = Field(True, description="drop whole passages/demonstrations before pruning tokens")
    coarse_factor: float | None = Field(
        None,
        ge=1,
        le=4,
        description="coarse keeps passages up to this x the budget (1.5; 1.0 question_aware)",
    )
    reorder: bool | None = Field(None, description="put the most relevant passages first (question_aware)")
    dynamic_ratio: float = Field(0.4, ge=0, le=1, description="spread of per-passage rates by relevance")
    scores: Literal["self", "conditional", "contrastive"] | None = Field(
        None, description="what fine pruning ranks words by (default: self; conditional in question_aware)"
    )
    compress_system: bool = Field(False, description="chat: compress the system prompt too")
    compress_question: bool = Field(False, description="chat: compress the last user question too")
    min_message_tokens: int = Field(64, ge=0, description="chat: shorter messages are left alone")
    annotate: bool = Field(False, description="put the original with dropped runs as [-...-] in the report")
    scorer: Literal["local", "backend", "classifier"] | None = Field(
        None,
        description="who scores tokens: the in-process model (local), the serving backend, or the small "
        "classifier distilled from SmolLM2 (default: the server's)",
    )

    @model_validator(mode="after")
    def _question_for_question_aware(self) -> CompressOptions:
        if self.question is not None and not self.question.strip():
            raise ValueError("question must not be empty")
        return self

    @property
    def effective_mode(self) -> Mode:
        return self.mode or ("question_aware" if self.question else "plain")

    @property
    def effective_rate(self) -> float:
        return 0.5 if self.rate is None else self.rate

    def target_for(self, original_tokens: int) -> int:
        """Tokens wanted for an input of `original_tokens` tokens."""
        if self.target_tokens is not None:
            return min(self.target_tokens, original_tokens)
        return max(1, round(original_tokens * self.effective_rate))


class CompressInputError(InvalidRequest):
    """The input or options cannot be compressed as asked (empty text, a missing question, ...).
    `param` names the offending field, for the proxy's 400 and the CLI's one-line error."""


__all__ = ["CompressInputError", "CompressOptions", "Mode"]
