"""A plan as data: the skeleton, its branches and what happened to each, for the `promptfold` report.

Executors fill a `PlanRecord` as they go; `as_dict()` is what lands in `report.details["organize"]`.
Times are seconds since the request reached the executor.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from backend import Usage

from .skeleton import Skeleton


@dataclass
class BranchRecord:
    """One point's expansion: its tokens, how much of its prompt was served from cache, its timing."""

    index: int  # 1-based, as in the outline
    point: str
    text: str = ""
    prompt_tokens: int = 0
    cached_tokens: int = 0
    completion_tokens: int = 0
    shared_prefix_tokens: int = 0
    finish_reason: str | None = None
    max_tokens: int = 0
    retries: int = 0
    start_s: float | None = None
    first_token_s: float | None = None
    end_s: float | None = None
    error: str | None = None

    @property
    def cached_share_of_shared_prefix(self) -> float | None:
        if not self.shared_prefix_tokens:
            return None
        return min(self.cached_tokens, self.shared_prefix_tokens) / self.shared_prefix_tokens

    def usage(self) -> Usage:
        return Usage(self.prompt_tokens, self.completion_tokens, self.cached_tokens)

    def as_dict(self) -> dict[str, Any]:
        share = self.cached_share_of_shared_prefix
        return {
            "point": self.index,
            "title": self.point,
            "prompt_tokens": self.prompt_tokens,
            "cached_tokens": self.cached_tokens,
            "shared_prefix_tokens": self.shared_prefix_tokens,
            "cached_share_of_shared_prefix": None if share is None else round(share, 3),
            "completion_tokens": self.completion_tokens,
            "max_tokens": self.max_tokens,
            "finish_reason": self.finish_reason,
            "retries": self.retries,
            "start_s": _round(self.start_s),
            "first_token_s": _round(self.first_token_s),
            "end_s": _round(self.end_s),
            **({"error": self.error} if self.error else {}),
        }


@dataclass
class PlanRecord:
    """Everything one organized request did; `usage()` sums every backend call it made."""

    mode: str  # the plan that ran: sot, pipelined, or plain after a fallback
    requested: str  # what the request asked for: auto, sot, pipelined
    started: float = field(default_factory=time.perf_counter)
    router: dict[str, Any] | None = None
    skeleton: Skeleton | None = None
    skeleton_usage: Usage = field(default_factory=Usage)
    skeleton_end_s: float | None = None
    warm: dict[str, Any] | None = None
    branches: list[BranchRecord] = field(default_factory=list)
    fallback: str | None = None  # why the answer came from plain decoding instead
    plain_usage: Usage = field(default_factory=Usage)
    events: list[str] = field(default_factory=list)  # retries, failures, skipped optimisations
    end_s: float | None = None

    def now(self) -> float:
        return time.perf_counter() - self.started

    def usage(self) -> Usage:
        total = self.skeleton_usage + self.plain_usage
        for branch in self.branches:
            total = total + branch.usage()
        return total

    def as_dict(self) -> dict[str, Any]:
        expansion_end = max((b.end_s for b in self.branches if b.end_s is not None), default=None)
        return {
            "mode": self.mode,
            "requested": self.requested,
            **({"router": self.router} if self.router is not None else {}),
            **({"fallback": self.fallback} if self.fallback else {}),
            "skeleton": None
            if self.skeleton is None
            else {
                **self.skeleton.as_dict(),
                "prompt_tokens": self.skeleton_usage.prompt_tokens,
                "cached_tokens": self.skeleton_usage.cached_tokens,
                "completion_tokens": self.skeleton_usage.completion_tokens,
            },
            "warm": self.warm,
            "branches": [b.as_dict() for b in self.branches],
            "timings": {
                "skeleton_s": _round(self.skeleton_end_s),
                "expansion_end_s": _round(expansion_end),
                "total_s": _round(self.end_s),
            },
            "events": list(self.events),
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
