"""The OpenAI-compatible proxy. `create_app(settings)` builds it; `promptfold serve` runs it."""

from .app import create_app

__all__ = ["create_app"]
