"""Making a gist end to end: frame the prefix, gather queries and answers, distil, evaluate, describe.

    gist = await make_gist(backend, GistJob(PrefixSpec(text, "system"), TrainConfig(tokens=16)))
    GistStore(settings.data_dir / "gists").save(gist)

The CLI (`promptfold gist train`), the proxy (`POST /v1/gists`) and `bench/gist.py` all come here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from backend import Backend
from backend.weights import LoadedModel, ModelWeights

from .data import Example, build_examples, sample_queries, split_heldout
from .distill import TrainConfig, TrainProgress, train_gist
from .errors import GistError
from .evaluate import evaluate_gist
from .model import ServingModel, serving_model
from .prefix import FramedPrefix, PrefixSpec, check_gist_size, frame_prefix
from .store import Gist, GistRecord, gist_id


@dataclass
class GistJob:
    """What to train: the prefix, the training settings, and where the queries come from."""

    prefix: PrefixSpec
    config: TrainConfig
    queries: list[str] | None = None  # None: sampled from the model as continuations of the prefix
    num_queries: int = 48
    max_query_tokens: int = 64
    max_answer_tokens: int = 64
    device: str | None = None  # training device for a remote backend's weights (default: cuda if present)
    rows: int = 8  # prompts generated at once (each holds its own copy of the prefix KV in the engine)


@dataclass
class Prepared:
    """A framed prefix with its examples, split; reusable for several k (bench/gist.py does)."""

    prefix: FramedPrefix
    train: list[Example]
    heldout: list[Example]
    query_source: str
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


async def prepare(backend: Backend, job: GistJob) -> Prepared:
    """Frame the prefix, check k, gather queries and the model's answers, split off the held-out part."""
    import time

    began = time.perf_counter()
    prefix = frame_prefix(job.prefix, backend)
    check_gist_size(len(prefix), job.config.tokens)
    if job.queries is not None:
        queries, source = list(job.queries), "given"
    else:
        queries = await sample_queries(
            backend,
            prefix,
            job.num_queries,
            seed=job.config.seed,
            max_tokens=job.max_query_tokens,
            rows=job.rows,
        )
        source = "sampled from the model"
    if len(queries) < 2:
        raise GistError(f"distillation needs at least 2 queries, got {len(queries)}", param="queries")
    examples = await build_examples(
        backend, prefix, queries, max_answer_tokens=job.max_answer_tokens, rows=job.rows
    )
    train, heldout = split_heldout(examples, job.config.heldout_fraction, job.config.seed)
    return Prepared(prefix, train, heldout, source, time.perf_counter() - began)


async def training_model(serving: ServingModel, backend: Backend, device: str | None = None) -> LoadedModel:
    """The frozen model to distil with: the embedded engine's own, else the serving model's folder
    loaded here (CUDA when present)."""
    weights = await backend.model_weights()
    if weights is not None and weights.loaded is not None:
        return weights.loaded
    import torch

    return ModelWeights(serving.folder).load(device or ("cuda" if torch.cuda.is_available() else "cpu"))


async def make_gist(
    backend: Backend,
    job: GistJob,
    *,
    prepared: Prepared | None = None,
    serving: ServingModel | None = None,
    embeds_backend: Backend | None = None,
    progress: Callable[[TrainProgress], None] | None = None,
) -> Gist:
    """Train and evaluate a gist for the backend's model; nothing is stored (see GistStore.save).

    `backend` answers the queries; greedy answers with the gist go to `embeds_backend` (default: the same
    backend; SGLang with its radix cache on cannot take them: use a --disable-radix-cache server).
    """
    serving = serving or await serving_model(embeds_backend or backend)
    prepared = prepared or await prepare(backend, job)
    check_gist_size(len(prepared.prefix), job.config.tokens)
    model = await training_model(serving, backend, job.device)
    prefix_ids = prepared.prefix.token_ids
    result = await asyncio.to_thread(
        train_gist, model, prefix_ids, prepared.train, prepared.heldout, job.config, progress=progress
    )
    figures = await evaluate_gist(
        embeds_backend or backend,
        serving,
        model,
        prefix_ids,
        result.vectors,
        prepared.heldout,
        job.max_answer_tokens,
    )
    prefix = prepared.prefix
    record = GistRecord(
        id=gist_id(prefix.hash, serving.fingerprint, job.config.tokens),
        model_id=serving.model_id,
        model_hash=serving.fingerprint,
        prefix_hash=prefix.hash,
        prefix_text_hash=prefix.spec.text_hash,
        prefix_role=prefix.spec.role,
        prefix_text=prefix.spec.text,
        prefix_tokens=len(prefix),
        tokens=job.config.tokens,
        hidden_size=int(result.vectors.shape[1]),
        loss=round(result.heldout_loss, 5),
        eval=figures,
        training={
            **asdict(job.config),
            "device": str(model.device),
            "queries": query_summary(prepared.train, prepared.heldout, prepared.query_source),
            "max_answer_tokens": job.max_answer_tokens,
            "initial_loss": round(result.initial_loss, 5),
            "best_step": result.best_step,
            "steps_run": result.steps,
            "stopped_early": result.stopped_early,
            "seconds": round(result.seconds, 1),
            "data_seconds": round(prepared.seconds, 1),
        },
    )
    return Gist(record, result.vectors, list(prefix_ids))


def query_summary(train: Sequence[Example], heldout: Sequence[Example], source: str) -> dict[str, Any]:
    return {"source": source, "train": len(train), "heldout": len(heldout)}
