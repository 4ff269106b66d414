"""What promptfold did to a request, for the `promptfold` response field and `x-promptfold-*` headers."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class StageReport:
    """One stage's account: whether it changed the request, tokens before and after, time, details."""

    stage: str
    applied: bool
    skipped_reason: str | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    time_s: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def skipped(cls, stage: str, reason: str, **details: Any) -> StageReport:
        return cls(stage, applied=False, skipped_reason=reason, details=details)


@dataclass
class RequestReport:
    backend: str
    model: str
    plan: str = "plain"  # how the answer was produced: plain, or an organize plan (sot, pipelined)
    stages: list[StageReport] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    time_s: float = 0.0
    time_to_first_token_s: float | None = None
    notes: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    def add(self, stage: StageReport) -> None:
        self.stages.append(stage)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["time_s"] = round(self.time_s, 4)
        if self.time_to_first_token_s is not None:
            data["time_to_first_token_s"] = round(self.time_to_first_token_s, 4)
        for stage in data["stages"]:
            stage["time_s"] = round(stage["time_s"], 4)
        return data

    def headers(self) -> dict[str, str]:
        """A compact summary as HTTP headers (values are ASCII, no commas inside a field)."""
        headers = {
            "x-promptfold-backend": self.backend,
            "x-promptfold-plan": self.plan,
            "x-promptfold-prompt-tokens": str(self.prompt_tokens),
            "x-promptfold-cached-tokens": str(self.cached_tokens),
            "x-promptfold-time-ms": str(round(self.time_s * 1000)),
        }
        applied = [s.stage for s in self.stages if s.applied]
        headers["x-promptfold-stages"] = ",".join(applied) if applied else "none"
        saved = sum((s.tokens_in or 0) - (s.tokens_out or 0) for s in self.stages if s.applied)
        if saved:
            headers["x-promptfold-tokens-saved"] = str(saved)
        return headers
