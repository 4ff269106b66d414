"""Learning k soft tokens G that make the frozen model behave after [G + x] as it does after [P + x].

The teacher is the serving model with the full prefix P: P's KV is computed once, and each batch of
continuations x runs on top of it (batch-expanded, no copy), without gradients. The student is the same
frozen model reading G and then the embeddings of x; only G has a gradient. The loss is the exact
KL(teacher || student) of the next-token distributions, a weighted mean over the positions of x: the
distribution predicting x[0] comes from the last prefix token (teacher) and the last gist vector
(student), then one per token of x. (A top-k summary of the teacher, computed once, would save the
teacher's forward but misjudges the flat distributions over a user's next words.)

Right padding needs no attention mask: with causal attention, real tokens never see the pads after them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import torch

from .data import Example

Init = Literal["edges", "mean", "sample", "random"]


@dataclass
class TrainConfig:
    """Training settings. Steps are optimizer steps over `batch_size` continuations."""

    tokens: int  # k, the number of gist vectors
    max_steps: int = 150
    batch_size: int = 4
    learning_rate: float = 0.02
    eval_every: int = 10  # steps between held-out evaluations (early stopping)
    patience: int = 3  # evaluations without a 1% improvement before stopping
    heldout_fraction: float = 0.25
    seed: int = 0
    init: Init = "edges"
    query_weight: float = 1.0  # loss weight of positions that predict the query (answers weigh 1)


@dataclass
class TrainProgress:
    step: int
    max_steps: int
    train_loss: float | None
    heldout_loss: float | None
    best_loss: float


@dataclass
class TrainResult:
    vectors: torch.Tensor  # [k, hidden], float32, on the CPU: the best G seen on the held-out split
    heldout_loss: float  # its held-out loss: weighted mean KL, nats per position
    initial_loss: float  # the held-out loss of the initial G
    best_step: int
    steps: int
    stopped_early: bool
    seconds: float
    history: list[tuple[int, float | None, float]] = field(default_factory=list)  # step, train, held out


# --- teacher and student ------------------------------------------------------------------------------


class Teacher:
    """The frozen model with the full prefix; P's KV is computed once."""

    def __init__(self, model: Any, prefix_ids: Sequence[int]) -> None:
        self.model = model
        ids = torch.tensor([list(prefix_ids)], device=model.device)
        n = ids.shape[1]
        with torch.no_grad(), model.lock:  # not inference_mode: inference tensors could not feed autograd
            hidden, self.cache = model.forward(
                model.empty_kv(1),
                model.embed(ids),
                torch.ones(1, n, dtype=torch.long),
                torch.arange(n, device=model.device).unsqueeze(0),
            )
            self.first_logits = model.logits(hidden[:, -1:]).float()  # predicts x[0]
        self.prefix_len = n

    def logits(self, batch: list[list[int]]) -> torch.Tensor:
        """[rows, L, vocab] float32 next-token logits for x[0..L-1] of each (right-padded) row."""
        model, rows = self.model, len(batch)
        ids, _ = pad(batch, device=model.device)
        cache = self.cache.expand(rows)
        first = self.first_logits.expand(rows, -1, -1)
        if ids.shape[1] == 1:
            return first.clone()
        body = ids[:, :-1]
        positions = self.prefix_len + torch.arange(body.shape[1], device=model.device).expand(rows, -1)
        with torch.no_grad(), model.lock:  # not inference_mode: the student's loss saves these
            hidden, _ = model.forward(cache, model.embed(body), torch.ones_like(body), positions)
            return torch.cat([first, model.logits(hidden).float()], dim=1)


def student_logits(model: Any, vectors: torch.Tensor, batch: list[list[int]]) -> torch.Tensor:
    """[rows, L, vocab] float32 logits after [G + x] for x[0..L-1]; differentiable in `vectors`."""
    ids, _ = pad(batch, device=model.device)
    rows, k = ids.shape[0], vectors.shape[0]
    gist = vectors.to(model.dtype).unsqueeze(0).expand(rows, -1, -1)
    inputs = torch.cat([gist, model.embed(ids[:, :-1])], dim=1)
    hidden = model.model.model(inputs_embeds=inputs, use_cache=False).last_hidden_state
    return model.logits(hidden[:, k - 1 :]).float()


def position_weights(examples: Sequence[Example], width: int, query_weight: float) -> torch.Tensor:
    """[rows, width]: 1 for answer positions, `query_weight` before them, 0 for pads."""
    weights = torch.zeros(len(examples), width)
    for row, example in enumerate(examples):
        weights[row, : len(example.rest_ids)] = query_weight
        weights[row, len(example.rest_ids) : len(example.continuation)] = 1.0
    return weights


def kl_per_position(teacher: torch.Tensor, student: torch.Tensor) -> torch.Tensor:
    """KL(teacher || student) in nats for each position of [rows, L, vocab] logits: [rows, L]."""
    logp = torch.log_softmax(teacher, dim=-1)
    logq = torch.log_softmax(student, dim=-1)
    return (logp.exp() * (logp - logq)).sum(-1)


# --- the loop -----------------------------------------------------------------------------------------


def initial_vectors(model: Any, prefix_ids: Sequence[int], k: int, how: Init, seed: int) -> torch.Tensor:
    """G before training, float32 [k, hidden] on the model's device.

    edges: the prefix's first token and its last k-1 tokens: for a chat prefix, the template's opening and
    the tokens just before the query, so that training starts from a well-formed, content-free context.
    mean: the prefix split into k contiguous runs, each run's embeddings averaged and scaled back to the
    mean embedding norm (averaging shrinks it). sample: the embeddings of k evenly spaced prefix tokens.
    random: the embeddings of k random vocabulary tokens.
    """
    with torch.no_grad():
        embeds = model.embed(torch.tensor(list(prefix_ids), device=model.device)).float()
        norm = embeds.norm(dim=-1).mean()
        if how == "edges":
            vectors = torch.cat([embeds[:1], embeds[len(prefix_ids) - k + 1 :]]) if k > 1 else embeds[:1]
        elif how == "mean":
            runs = torch.tensor_split(embeds, k, dim=0)
            means = torch.stack([run.mean(dim=0) for run in runs])
            vectors = means / means.norm(dim=-1, keepdim=True).clamp_min(1e-6) * norm
        elif how == "sample":
            index = torch.linspace(0, len(prefix_ids) - 1, k, device=model.device).round().long()
            vectors = embeds[index]
        else:
            generator = torch.Generator().manual_seed(seed)
            vocab = model.embedding.weight.shape[0]
            index = torch.randint(vocab, (k,), generator=generator).to(model.device)
            vectors = model.embedding.weight[index].float()
    return vectors.clone().contiguous()


def train_gist(
    model: Any,
    prefix_ids: Sequence[int],
    train: Sequence[Example],
    heldout: Sequence[Example],
    config: TrainConfig,
    *,
    progress: Callable[[TrainProgress], None] | None = None,
) -> TrainResult:
    """Distil the prefix into `config.tokens` vectors; returns the best G on the held-out split.

    `model` is a `backend.weights.LoadedModel` (frozen); it runs on its own device (CPU or CUDA).
    Seeded: the same data, config and device give the same vectors.
    """
    began = time.perf_counter()
    torch.manual_seed(config.seed)
    teacher = Teacher(model, prefix_ids)
    vectors = initial_vectors(model, prefix_ids, config.tokens, config.init, config.seed)
    vectors.requires_grad_(True)
    optimizer = torch.optim.Adam([vectors], lr=config.learning_rate)
    batches = _batches(len(train), config.batch_size, torch.Generator().manual_seed(config.seed))

    def heldout_loss() -> float:
        return distillation_loss(model, teacher, vectors, heldout, config.batch_size, config.query_weight)

    initial = best = heldout_loss()
    best_vectors, best_step, stale, step = vectors.detach().clone(), 0, 0, 0
    history: list[tuple[int, float | None, float]] = [(0, None, initial)]
    if progress:
        progress(TrainProgress(0, config.max_steps, None, initial, best))
    stopped_early = False
    while step < config.max_steps:
        train_loss = _step(model, teacher, vectors, optimizer, [train[i] for i in next(batches)], config)
        step += 1
        held = None
        if step % config.eval_every == 0 or step == config.max_steps:
            held = heldout_loss()
            history.append((step, train_loss, held))
            stale = 0 if held < best * 0.99 else stale + 1
            if held < best:
                best, best_vectors, best_step = held, vectors.detach().clone(), step
        if progress:
            progress(TrainProgress(step, config.max_steps, train_loss, held, best))
        if stale >= config.patience:
            stopped_early = True
            break
    return TrainResult(
        vectors=best_vectors.float().cpu(),
        heldout_loss=best,
        initial_loss=initial,
        best_step=best_step,
        steps=step,
        stopped_early=stopped_early,
        seconds=time.perf_counter() - began,
        history=history,
    )


def _step(
    model: Any,
    teacher: Teacher,
    vectors: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    chunk: list[Example],
    config: TrainConfig,
) -> float:
    """One Adam step on the weighted KL between the teacher and the student on `chunk`; its loss."""
    xs = [e.continuation for e in chunk]
    full = teacher.logits(xs)
    with model.lock:
        kl = kl_per_position(full, student_logits(model, vectors, xs))
        weights = position_weights(chunk, kl.shape[1], config.query_weight).to(kl.device)
        loss = (kl * weights).sum() / weights.sum()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
    optimizer.step()
    return float(loss.detach())


def distillation_loss(
    model: Any,
    teacher: Teacher,
    vectors: torch.Tensor,
    examples: Sequence[Example],
    batch: int,
    query_weight: float = 1.0,
) -> float:
    """The weighted mean KL(full prefix || G) over `examples`, nats per position (no gradient)."""
    total, weight = 0.0, 0.0
    with torch.no_grad():
        for start in range(0, len(examples), batch):
            chunk = examples[start : start + batch]
            xs = [e.continuation for e in chunk]
            full = teacher.logits(xs)
            with model.lock:
                kl = kl_per_position(full, student_logits(model, vectors, xs))
            weights = position_weights(chunk, kl.shape[1], query_weight).to(kl.device)
            total += float((kl * weights).sum())
            weight += float(weights.sum())
    return total / max(weight, 1e-9)


def _batches(n: int, size: int, generator: torch.Generator) -> Any:
    """Endless seeded epochs of shuffled example indices, `size` at a time."""
    while True:
        order = torch.randperm(n, generator=generator).tolist()
        for start in range(0, n, size):
            chunk = order[start : start + size]
            if len(chunk) == size or n < size:
                yield chunk


def pad(batch: list[list[int]], *, device: torch.device, value: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded [rows, L] ids and the [rows, L] mask of real tokens."""
    width = max(len(x) for x in batch)
    ids = torch.full((len(batch), width), value, dtype=torch.long)
    mask = torch.zeros(len(batch), width, dtype=torch.long)
    for row, x in enumerate(batch):
        ids[row, : len(x)] = torch.tensor(x, dtype=torch.long)
        mask[row, : len(x)] = 1
    return ids.to(device), mask.to(device)
