"""One running request inside the engine: its decoding state, when it is done, and its result."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

from ..base import Generation, TokenLogprob, Usage
from .detokenize import TextStream
from .logits import RowRules, TokenHistory
from .model import LoadedModel
from .requests import EngineRequest
from .sampling import make_generator


@dataclass
class Row:
    request: EngineRequest
    text: TextStream
    generator: torch.Generator
    rules: RowRules
    stop_ids: frozenset[int]  # tokens that end the answer (not part of its text)
    cached_tokens: int = 0
    prompt_logprobs: list[float | None] | None = None
    generated: list[int] = field(default_factory=list)
    logprobs: list[TokenLogprob] | None = None
    first_token_at: float | None = None
    failed: bool = False  # answered with an error; dropped at the next retire
    # tokens (and their logprobs) not yet handed to the sink: text is released only once final
    pending_ids: list[int] = field(default_factory=list)
    pending_logprobs: list[TokenLogprob] = field(default_factory=list)

    def finished(self, room: int) -> str | None:
        """'stop' or 'length' once this row is done, else None."""
        if self.request.cancelled or self.text.stopped:
            return "stop"
        if self.generated and self.generated[-1] in self.stop_ids:
            return "stop"
        if self.rules.grammar is not None and self.generated and self.rules.grammar.done:
            return "stop"
        if len(self.generated) >= min(self.request.sampling.max_tokens, room):
            return "length"
        return None

    def record(self, token: int, entry: TokenLogprob | None) -> None:
        """Note an accepted token in every place that keeps count of the answer."""
        self.generated.append(token)
        self.rules.generated += 1
        if self.rules.history is not None:
            self.rules.history.add(token)
        self.pending_ids.append(token)
        if entry is not None and self.logprobs is not None:
            self.logprobs.append(entry)
            self.pending_logprobs.append(entry)


def new_row(request: EngineRequest, model: LoadedModel) -> Row:
    """The engine's state for a request about to be prefilled."""
    sampling = request.sampling
    # EOS ends the answer unless ignore_eos holds it back; a constrained row always may end on EOS
    eos = model.stop_token_ids
    ends_on_eos = not sampling.ignore_eos or request.grammar is not None
    stop_ids = frozenset(sampling.stop_token_ids) | (eos if ends_on_eos else frozenset())
    rules = RowRules(sampling, eos, grammar=request.grammar)
    if rules.penalised:
        rules.history = TokenHistory(model.vocab_size, request.token_ids)
    return Row(
        request=request,
        text=TextStream(model.tokenizer, sampling.stop),
        generator=make_generator(sampling.seed),
        rules=rules,
        stop_ids=stop_ids,
        logprobs=[] if sampling.logprobs else None,
    )


def result_of(row: Row, reason: str) -> Generation:
    request = row.request
    finished_at = time.perf_counter()
    return Generation(
        text=row.text.text,
        finish_reason="stop" if reason == "stop" else "length",
        usage=Usage(request.prompt_len, len(row.generated), row.cached_tokens),
        token_ids=list(row.generated),
        prompt_token_ids=request.token_ids.tolist() if request.token_ids is not None else None,
        prompt_logprobs=row.prompt_logprobs,
        logprobs=row.logprobs,
        time_to_first_token_s=(row.first_token_at - request.submitted_at) if row.first_token_at else None,
        latency_s=finished_at - request.submitted_at,
    )
