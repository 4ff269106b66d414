"""Which stages and executors a pipeline gets, in the order they run, and the services they share with
the proxy's routes and the SDK. Imported explicitly: to add a stage, import it here and put it in the list.

    retrieval   pick the passages relevant to the question (a corpus, documents sent, or the prompt's own)
    gist        swap a known prefix for its trained gist vectors
    compress    prune low-information tokens to a budget (LLMLingua / LongLLMLingua)
    executors   plain decoding (built in), and the organize plans: sot, pipelined, auto
"""

from __future__ import annotations

from dataclasses import dataclass

from backend import Backend

from .compress.gist.stage import GistStage
from .compress.gist.store import GistStore
from .compress.service import CompressionService
from .compress.stage import CompressStage
from .config import Settings
from .organize.executors import organize_executors
from .pipeline import Pipeline, Stage
from .retrieval.catalog import Corpora, corpora_for
from .retrieval.stage import RetrievalStage


@dataclass
class Assembly:
    """A pipeline and the services its stages hold, for the routes and the SDK to share."""

    pipeline: Pipeline
    compression: CompressionService
    corpora: Corpora
    gists: GistStore


def assemble(backend: Backend, settings: Settings) -> Assembly:
    compression = CompressionService(
        backend,
        device=settings.device,
        workers=settings.compress_workers,
        cache_chars=settings.compress_cache_mb * 2**20,
        default_scorer=settings.compress_scorer,
    )
    corpora = corpora_for(settings.data_dir)
    gists = GistStore(settings.data_dir / "gists")
    stages: list[Stage] = [
        RetrievalStage(backend, settings, corpora),
        GistStage(backend, gists),
        CompressStage(compression),
    ]
    pipeline = Pipeline(backend, settings, stages=stages, executors=organize_executors())
    return Assembly(pipeline, compression, corpora, gists)


def build_pipeline(backend: Backend, settings: Settings) -> Pipeline:
    return assemble(backend, settings).pipeline
