"""Which stages and executors a pipeline gets, in the order they run.

A stage module exposes `stage(backend, settings) -> Stage | None` (None: not available here, e.g. a
missing optional dependency); an executor module exposes `executors(backend, settings) -> dict`.
Add a module to the lists below to plug it in; nothing else in the pipeline changes.
"""

from __future__ import annotations

import importlib

from backend import Backend

from .config import Settings
from .pipeline import Executor, Pipeline, Stage

# Input stages, in order: retrieval picks passages, gist swaps a known prefix, lingua prunes tokens.
STAGE_MODULES: list[str] = [
    "middleware.retrieval.stage",
    "middleware.compress.gist.stage",
    "middleware.compress.stage",
]
# Executors for organize plans (plain decoding is built in).
EXECUTOR_MODULES: list[str] = ["middleware.organize.executors"]


def build_pipeline(backend: Backend, settings: Settings) -> Pipeline:
    stages: list[Stage] = []
    for name in STAGE_MODULES:
        stage = importlib.import_module(name).stage(backend, settings)
        if stage is not None:
            stages.append(stage)
    executors: dict[str, Executor] = {}
    for name in EXECUTOR_MODULES:
        executors.update(importlib.import_module(name).executors(backend, settings))
    return Pipeline(backend, settings, stages=stages, executors=executors)
