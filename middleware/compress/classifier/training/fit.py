"""Fitting the student: weighted mean squared error between its per-wordpiece scores and the teacher's
unit scores, in units of the targets' spread, AdamW with linear warm-up and decay, bfloat16 autocast on
CUDA. Seeded: the same data, seed and device give the same model."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..rows import Row
from ..student import TokenRegressor
from .teacher import Example


@dataclass(frozen=True)
class FitConfig:
    epochs: float = 3.0
    batch_rows: int = 64
    lr: float = 1e-4
    head_lr: float = 1e-3
    weight_decay: float = 0.01
    warmup: float = 0.06  # share of the steps
    seed: int = 0
    time_limit_s: float | None = None  # stop early (and say so) when training takes longer


def training_arrays(rows: Sequence[Row], examples: Sequence[Example]) -> list[dict[str, np.ndarray]]:
    """Per row: ids, types, and the target and weight of every position (0 weight where not scored)."""
    out = []
    for row in rows:
        example = examples[row.request]
        target = np.zeros(len(row.ids), dtype=np.float32)
        weight = np.zeros(len(row.ids), dtype=np.float32)
        span = slice(row.at, row.at + row.end - row.begin)
        target[span] = example.target[row.begin : row.end]
        weight[span] = example.weight[row.begin : row.end]
        out.append({"ids": row.ids, "types": row.types, "target": target, "weight": weight})
    return out


def target_stats(arrays: Sequence[dict[str, np.ndarray]]) -> tuple[float, float]:
    """Weighted mean and standard deviation of the targets (nats)."""
    weights = np.concatenate([a["weight"] for a in arrays])
    targets = np.concatenate([a["target"] for a in arrays])
    mean = float(np.average(targets, weights=weights))
    std = float(np.sqrt(np.average((targets - mean) ** 2, weights=weights)))
    return mean, max(std, 1e-3)


def fit(
    model: TokenRegressor,
    arrays: Sequence[dict[str, np.ndarray]],
    config: FitConfig,
    device: str,
    advance: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Train `model` in place; returns the loss history (per tenth of training) and the time taken."""
    torch.manual_seed(config.seed)
    generator = np.random.default_rng(config.seed)
    mean, std = target_stats(arrays)
    with torch.no_grad():  # start at the mean: the head learns the spread, the encoder the rest
        model.head.bias.fill_(mean)
        model.head.weight.mul_(0.1)
    model.to(device).train()
    head = list(model.head.parameters())
    body = [p for n, p in model.named_parameters() if not n.startswith("head.")]
    optimizer = torch.optim.AdamW(
        [{"params": body, "lr": config.lr}, {"params": head, "lr": config.head_lr}],
        weight_decay=config.weight_decay,
    )
    steps = steps_for(len(arrays), config)
    warmup = max(1, int(config.warmup * steps))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup, max(0.0, (steps - s) / max(1, steps - warmup)))
    )
    autocast = device.startswith("cuda")
    history: list[float] = []
    losses: list[float] = []
    started = time.perf_counter()
    lengths = np.asarray([len(a["ids"]) for a in arrays])
    done = 0
    for step, indices in enumerate(_batches(lengths, config, steps, generator)):
        if config.time_limit_s is not None and time.perf_counter() - started > config.time_limit_s:
            break
        ids, mask, types, target, weight = _collate([arrays[i] for i in indices], device)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=autocast):
            predicted = model(ids, mask, types).float()
        loss = (weight * ((predicted - target) / std) ** 2).sum() / weight.sum().clamp_min(1e-6)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        losses.append(float(loss.detach()))
        if (step + 1) % max(1, steps // 10) == 0:
            history.append(round(float(np.mean(losses)), 4))
            losses = []
        done = step + 1
        if advance is not None:
            advance(1)
    model.eval()
    return {
        "steps_done": done,
        "steps": steps,
        "loss_history": history,
        "seconds": round(time.perf_counter() - started, 1),
        "target_mean": round(mean, 4),
        "target_std": round(std, 4),
    }


def steps_for(rows: int, config: FitConfig) -> int:
    return max(1, math.ceil(rows * config.epochs / config.batch_rows))


def _batches(
    lengths: np.ndarray, config: FitConfig, steps: int, generator: np.random.Generator
) -> Iterator[list[int]]:
    """`steps` batches of `batch_rows` row indices from shuffled epochs; rows are sorted by length within
    runs of 50 batches, so that a batch pads little, and those batches are shuffled again."""
    pending: list[list[int]] = []
    order: list[int] = []
    for _ in range(steps):
        if not pending:
            run = config.batch_rows * 50
            while len(order) < run:
                order.extend(generator.permutation(len(lengths)).tolist())
            chunk = sorted(order[:run], key=lambda i: lengths[i])
            del order[:run]
            pending = [chunk[i : i + config.batch_rows] for i in range(0, run, config.batch_rows)]
            generator.shuffle(pending)  # type: ignore[arg-type]
        yield pending.pop()


def _collate(rows: list[dict[str, np.ndarray]], device: str) -> tuple[torch.Tensor, ...]:
    width = max(len(r["ids"]) for r in rows)
    ids = np.zeros((len(rows), width), np.int64)
    types = np.zeros((len(rows), width), np.int64)
    mask = np.zeros((len(rows), width), np.int64)
    target = np.zeros((len(rows), width), np.float32)
    weight = np.zeros((len(rows), width), np.float32)
    for i, row in enumerate(rows):
        n = len(row["ids"])
        ids[i, :n], types[i, :n], mask[i, :n] = row["ids"], row["types"], 1
        target[i, :n], weight[i, :n] = row["target"], row["weight"]
    return tuple(
        torch.from_numpy(a).to(device, non_blocking=True) for a in (ids, mask, types, target, weight)
    )


def predict(
    model: TokenRegressor, rows: Sequence[Row], examples: Sequence[Example], device: str, batch_rows: int = 64
) -> list[np.ndarray]:
    """The model's score of every wordpiece of every example (in its rows), float32 nats."""
    from ..rows import batches, scatter

    out = [np.zeros(len(e.ids), dtype=np.float32) for e in examples]
    autocast = device.startswith("cuda")
    with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=autocast):
        for batch in batches(rows, batch_rows, batch_rows * 512):
            tensors = [torch.from_numpy(a).to(device) for a in (batch.ids, batch.mask, batch.types)]
            scatter(batch, model(*tensors).float().cpu().numpy(), out)
    return out
