"""The batch rewriter that compresses prompts with the compression stage's own code.

The rows of one batch are compressed concurrently and their scoring requests are merged into one call
to the scorer (`SharedScorer.gather`), so that the model reads them as one padded batch instead of one
forward per row. Everything else (options, budget, protected spans, ranker, token counting with the
backend's tokenizer) is `middleware.compress`'s.
"""

from __future__ import annotations

from typing import Any

from backend import Backend

from ..compress.batching import SharedScorer
from ..compress.compressor import Compressor
from ..compress.options import CompressOptions
from ..compress.result import CompressionResult
from ..compress.service import CompressionService
from ..user_errors import InvalidRequest, UserError
from .job import RowInput, RowOutput


class CompressRewriter:
    """Rewrites rows by compressing them; `rewrite` takes a whole batch (see the module docstring)."""

    def __init__(self, service: CompressionService, backend: Backend, options: CompressOptions) -> None:
        from ..sdk.loop import LoopThread

        self.service = service
        self.backend = backend
        self.options = options
        # One event loop for every batch: a remote backend's connection pool belongs to the loop it was
        # first used on (a fresh asyncio.run per batch would leave it bound to a closed loop).
        self._loop = LoopThread()

    def describe(self) -> dict[str, Any]:
        return self.options.model_dump(exclude_none=True, exclude_defaults=True) | {
            "rate": self.options.effective_rate if self.options.target_tokens is None else None,
            "model": self.backend.model_id or self.backend.name,
        }

    def check_backend(self) -> None:
        """Ask the backend for its health (a remote one learns its model and tokenizer here); raises
        BackendUnavailable with the reason when it is not ready."""
        from backend import BackendUnavailable

        backend = self.backend
        health = self._loop.run(backend.health())
        if not health.ok:
            raise BackendUnavailable(f"the backend is not ready: {health.detail}", backend=backend.name)

    def close(self) -> None:
        """Close the backend `compress_rewriter` opened, then the rewriter's loop thread."""
        self._loop.run(self.backend.close())
        self._loop.close()

    def compressor(self) -> Compressor:
        """The service's compressor for the options' scorer (its model loaded on first use)."""
        return self._loop.run(self.service.compressor(self.options.scorer))

    def rewrite(self, rows: list[RowInput]) -> list[RowOutput]:
        """Blocking; safe from several worker threads at once (all run on the rewriter's loop)."""
        return self._loop.run(self.arewrite(rows))

    async def arewrite(self, rows: list[RowInput]) -> list[RowOutput]:
        compressor = await self.service.compressor(self.options.scorer)
        scorer = compressor.scorer
        assert isinstance(scorer, SharedScorer)  # the service shares every scorer it makes
        results = await scorer.gather([self._compress(compressor, row) for row in rows])
        return [_output(result) for result in results]

    async def _compress(self, compressor: Compressor, row: RowInput) -> CompressionResult:
        options = self.options
        if row.question:
            options = options.model_copy(update={"question": row.question})
        if row.messages is not None:
            return await compressor.compress_messages(row.messages, options)
        return await compressor.compress_text(row.text or "", options)


def _output(result: CompressionResult | BaseException) -> RowOutput:
    if isinstance(result, UserError):  # the row's own fault (empty, wrong shape): recorded, not raised
        return RowOutput.failed(str(result))
    if isinstance(result, BaseException):
        return RowOutput.failed(f"{type(result).__name__}: {result}")
    rewritten: str | list[dict[str, Any]] = result.messages if result.messages is not None else result.text
    return RowOutput(rewritten, result.original_tokens, result.compressed_tokens)


def compress_rewriter(options: dict[str, Any], backend_spec: str = "local") -> CompressRewriter:
    """A rewriter for `--compress` options (the proxy's `promptfold.compress` fields) on the model of
    `backend_spec` ("local", "sglang://HOST:PORT", ...). A bad option raises InvalidRequest naming it.
    The caller closes it (`close()`) when done."""
    from backend import open_backend

    from ..config import Settings
    from ..options import request_options

    parsed = request_options({"compress": options or True}, where=None).compress
    if parsed is None:
        raise InvalidRequest(
            "compression is turned off (enabled=false): nothing to rewrite", param="compress"
        )
    settings = Settings(backend=backend_spec)
    backend = open_backend(backend_spec, **settings.backend_options())
    rewriter = CompressRewriter(CompressionService(backend, device=settings.device), backend, parsed)
    try:
        rewriter.check_backend()
    except Exception:
        rewriter.close()
        raise
    return rewriter
