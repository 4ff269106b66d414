"""How well a gist stands in for its prefix, on held-out examples (queries and the model's own answers).

Teacher-forced figures compare the full-prefix model with the gist-conditioned one position by position:
exact KL(full || gist) and argmax agreement over the answer tokens (what the served model generates),
and agreement over all positions of the continuation (query and answer). Whole greedy answers are
generated through the backend with the gist as input embeddings and compared with the full-prefix
answers token for token. `dropped_prefix_fidelity` is the baseline: the same figures with no prefix.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from backend import Backend, Prompt, SamplingParams

from .data import Example
from .distill import Teacher, pad, student_logits
from .model import ServingModel
from .prefix import FramedPrefix
from .store import GistEval


@dataclass
class _Tally:
    kl: float = 0.0
    all_kl: float = 0.0
    answer_same: int = 0
    answer_positions: int = 0
    all_same: int = 0
    all_positions: int = 0

    def add(self, full: torch.Tensor, other: torch.Tensor, answer_from: int, count_all: bool = True) -> None:
        """Compare [L, vocab] logits; positions >= answer_from predict answer tokens."""
        same = full.argmax(-1) == other.argmax(-1)
        logp, logq = torch.log_softmax(full, -1), torch.log_softmax(other, -1)
        kl = (logp.exp() * (logp - logq)).sum(-1)
        self.kl += float(kl[answer_from:].sum())
        self.answer_same += int(same[answer_from:].sum())
        self.answer_positions += full.shape[0] - answer_from
        if count_all:
            self.all_kl += float(kl.sum())
            self.all_same += int(same.sum())
            self.all_positions += full.shape[0]

    def result(self, queries: int) -> GistEval:
        n = max(self.answer_positions, 1)
        return GistEval(
            queries=queries,
            answer_positions=self.answer_positions,
            kl=round(self.kl / n, 4),
            next_token_agreement=round(self.answer_same / n, 4),
            all_positions_agreement=round(self.all_same / max(self.all_positions, 1), 4),
            all_positions_kl=round(self.all_kl / max(self.all_positions, 1), 4),
        )


def teacher_forced_fidelity(
    model: Any, prefix_ids: Sequence[int], vectors: torch.Tensor, examples: Sequence[Example], batch: int = 4
) -> GistEval:
    """Exact KL and argmax agreement of [G + x] against [P + x] (no greedy answers yet)."""
    teacher, tally = Teacher(model, prefix_ids), _Tally()
    for start in range(0, len(examples), batch):
        chunk = examples[start : start + batch]
        xs = [e.continuation for e in chunk]
        with torch.no_grad():
            full = teacher.logits(xs)
            with model.lock:
                gist = student_logits(model, vectors.to(model.device), xs)
        for row, example in enumerate(chunk):
            n = len(xs[row])
            tally.add(full[row, :n], gist[row, :n], len(example.rest_ids))
    return tally.result(len(examples))


def dropped_prefix_fidelity(
    model: Any, renderer: Backend, prefix: FramedPrefix, examples: Sequence[Example], batch: int = 4
) -> GistEval:
    """The baseline: the same request with the prefix left out (the query alone in the chat template),
    compared with the full prefix on the answer tokens. The all-positions figures are not defined here
    (the prompts differ) and repeat the answer figures."""
    teacher, tally = Teacher(model, prefix.token_ids), _Tally()
    for start in range(0, len(examples), batch):
        chunk = examples[start : start + batch]
        bare = [
            renderer.tokenize(renderer.apply_chat_template([{"role": "user", "content": e.query}]))
            for e in chunk
        ]
        with torch.no_grad():
            full = teacher.logits([e.continuation for e in chunk])
            ids, _ = pad(
                [b + list(e.answer_ids) for b, e in zip(bare, chunk, strict=True)], device=model.device
            )
            with model.lock:
                hidden = model.model.model(input_ids=ids, use_cache=False).last_hidden_state
                alone = model.logits(hidden).float()
        for row, example in enumerate(chunk):
            answer, rest = len(example.answer_ids), len(example.rest_ids)
            begin = len(bare[row]) - 1  # the position that predicts the first answer token
            tally.add(full[row, rest : rest + answer], alone[row, begin : begin + answer], 0, count_all=False)
    result = tally.result(len(examples))
    result.all_positions_agreement, result.all_positions_kl = result.next_token_agreement, result.kl
    return result


async def answers_agreement(
    backend: Backend,
    serving: ServingModel,
    vectors: torch.Tensor,
    examples: Sequence[Example],
    max_answer_tokens: int,
) -> float:
    """Share of examples whose greedy answer with the gist equals the full-prefix greedy answer, token for
    token, up to `max_answer_tokens` (the full-prefix answers in `examples` were made with that cap)."""
    prompts = [Prompt.from_embeds(serving.gist_prompt(vectors, e.rest_ids)) for e in examples]
    return await _same_answers(backend, prompts, examples, max_answer_tokens)


async def dropped_prefix_answers_agreement(
    backend: Backend, examples: Sequence[Example], max_answer_tokens: int
) -> float:
    """The baseline for whole answers: the share of greedy answers to the query alone (no prefix) that
    equal the full-prefix answers, token for token, up to `max_answer_tokens`."""
    prompts = [Prompt.from_messages([{"role": "user", "content": e.query}]) for e in examples]
    return await _same_answers(backend, prompts, examples, max_answer_tokens)


async def _same_answers(
    backend: Backend, prompts: list[Prompt], examples: Sequence[Example], max_answer_tokens: int
) -> float:
    outs = await backend.generate(prompts, SamplingParams(temperature=0.0, max_tokens=max_answer_tokens))
    same = 0
    for out, example in zip(outs, examples, strict=True):
        ids = list(out.token_ids) or backend.tokenize(out.text)
        same += ids[:max_answer_tokens] == list(example.answer_ids)[:max_answer_tokens]
    return same / max(len(examples), 1)


async def evaluate_gist(
    backend: Backend,
    serving: ServingModel,
    model: Any,
    prefix_ids: Sequence[int],
    vectors: torch.Tensor,
    examples: Sequence[Example],
    max_answer_tokens: int,
) -> GistEval:
    """All figures: teacher-forced fidelity plus whole greedy answers through the backend (left out,
    None, when the backend cannot take input embeddings)."""
    import asyncio

    figures = await asyncio.to_thread(teacher_forced_fidelity, model, prefix_ids, vectors, examples)
    if not backend.capabilities.input_embeds:
        return figures
    figures.answers_equal = round(
        await answers_agreement(backend, serving, vectors, examples, max_answer_tokens), 4
    )
    figures.answer_tokens = max_answer_tokens
    return figures
