"""What the engine receives for one prompt and what it hands back, across the thread boundary."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import numpy as np
import torch

from ..base import Generation, SamplingParams, TokenLogprob

if TYPE_CHECKING:
    from .grammar import RowGrammar


class Sink(Protocol):
    """Receives one request's output. Called from the engine thread: implementations must be thread-safe.

    Exactly one of on_done / on_error is called, once. `on_delta` gets a third argument, the tokens'
    logprobs, only for requests that asked for them (so a sink that never asks may take two).
    """

    def on_delta(
        self, text: str, token_ids: list[int], logprobs: list[TokenLogprob] | None = None
    ) -> None: ...

    def on_done(self, result: Generation) -> None: ...

    def on_error(self, error: BaseException) -> None: ...


@dataclass
class EngineRequest:
    """One prompt as token ids or as input embeddings ([tokens, hidden]), with how to decode it."""

    sampling: SamplingParams
    sink: Sink
    token_ids: np.ndarray | None = None
    embeds: torch.Tensor | None = None
    prompt_logprobs: bool = False
    logprob_start: int = 0
    grammar: RowGrammar | None = None  # the constraint's matcher, built off the engine thread
    submitted_at: float = field(default_factory=time.perf_counter)
    cancelled: bool = False  # set by the caller (client went away); the engine drops the row next step

    @property
    def prompt_len(self) -> int:
        if self.token_ids is not None:
            return len(self.token_ids)
        assert self.embeds is not None
        return int(self.embeds.shape[0])

    @property
    def cacheable_limit(self) -> int:
        """How many leading tokens may come from the prefix cache.

        At least the last prompt token is computed (its hidden state gives the first output), and a
        token whose logprob is wanted needs the hidden state of the token before it.
        """
        if self.token_ids is None:
            return 0
        limit = self.prompt_len - 1
        if self.prompt_logprobs:
            limit = min(limit, max(self.logprob_start, 1) - 1)
        return max(limit, 0)
