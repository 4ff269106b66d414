"""Which stages and executors a pipeline gets. New stages register here, in the order they run."""

from __future__ import annotations

from backend import Backend

from .config import Settings
from .pipeline import Executor, Pipeline, Stage


def build_pipeline(backend: Backend, settings: Settings) -> Pipeline:
    stages: list[Stage] = []
    executors: dict[str, Executor] = {}
    return Pipeline(backend, settings, stages=stages, executors=executors)
