"""The proxy stage: compress a request's prompt when its `promptfold.compress` options (or the server's
`stage_defaults["compress"]`) ask for it.

    {"promptfold": {"compress": {"rate": 0.4, "question": "...", "mode": "question_aware"}}}

Tokens are counted with the backend model's tokenizer. Scores come from the in-process SmolLM2 (shared
with the local engine when that is the backend), or with `"scorer": "backend"` from the serving backend's
prompt logprobs.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from pydantic import ValidationError

from backend import Backend, UnsupportedRequest

from ..config import Settings
from ..pipeline import Context, Request
from ..report import StageReport
from .coarse import PassageRanker
from .compressor import Compressor
from .options import CompressInputError, CompressOptions, parse_options
from .result import CompressionResult

NAME = "compress"


class CompressStage:
    name = NAME

    def __init__(self, backend: Backend, settings: Settings, *, ranker: PassageRanker | None = None) -> None:
        self.backend = backend
        self.settings = settings
        self.ranker = ranker  # question-aware passage ranking; None: the Compressor's default (hybrid)
        self._compressors: dict[str, Compressor] = {}

    def options_for(self, raw: dict[str, Any] | bool | None, *, where: str) -> CompressOptions | None:
        """Validated options (request over server defaults); CompressInputError naming the bad field."""
        try:
            return parse_options(raw, self.settings.stage_defaults.get(NAME))
        except ValidationError as error:
            first = error.errors()[0]
            path = ".".join([where, *(str(p) for p in first.get("loc", ()))])
            message = (
                "unknown field" if first.get("type") == "extra_forbidden" else first.get("msg", "invalid")
            )
            raise CompressInputError(f"Invalid '{path}': {message}.", param=path) from error

    def compressor(self, which: str) -> Compressor:
        if which not in self._compressors:
            if which == "backend":
                from .scorer import BackendScorer

                scorer: Any = BackendScorer(self.backend)
            else:
                from .scorer import LocalScorer

                local_model = getattr(getattr(self.backend, "loaded", None), "path", None)
                scorer = LocalScorer(str(local_model) if local_model else None, device=self.settings.device)
            self._compressors[which] = Compressor(
                scorer, ranker=self.ranker, count_tokens=self._counter(scorer)
            )
        return self._compressors[which]

    def _counter(self, scorer: Any) -> Any:
        try:
            self.backend.tokenize("probe")
        except (UnsupportedRequest, NotImplementedError):
            return scorer.count_tokens  # a remote backend without a local tokenizer: the scorer's counts
        return lambda text: len(self.backend.tokenize(text))

    async def run(
        self,
        options: CompressOptions,
        *,
        messages: list[dict[str, Any]] | None = None,
        text: str | None = None,
    ) -> CompressionResult:
        compressor = self.compressor(options.scorer or "local")
        if messages is not None:
            return await compressor.compress_messages(messages, options)
        if text is None or not text.strip():
            raise CompressInputError("there is nothing to compress: the prompt is empty", param="prompt")
        return await compressor.compress_text(text, options)

    async def __call__(self, request: Request, context: Context) -> tuple[Request, StageReport | None]:
        options = self.options_for(request.options.compress, where="promptfold.compress")
        if options is None:
            return request, None
        if request.embeds is not None:
            return request, StageReport.skipped(NAME, "the prompt is already embeddings")
        if request.messages is None and not isinstance(request.prompt, str):
            return request, StageReport.skipped(NAME, "token-id prompts are not compressed")
        text = request.prompt if request.messages is None and isinstance(request.prompt, str) else None
        result = await self.run(options, messages=request.messages, text=text)
        report = stage_report(result, options)
        if not report.applied:
            return request, report
        if result.messages is not None:
            return replace(request, messages=result.messages), report
        return replace(request, prompt=result.text), report


def stage_report(result: CompressionResult, options: CompressOptions) -> StageReport:
    details: dict[str, Any] = {
        "ratio": round(result.ratio, 4),
        "target_tokens": result.target_tokens,
        "mode": result.mode,
        "scorer": options.scorer or "local",
        "dropped_passages": result.dropped_passages,
        "passage_order": result.passage_order,
        "timings_s": {k: round(v, 4) for k, v in result.timings.items()},
    }
    if result.notes:
        details["notes"] = result.notes
    if options.annotate:
        details["annotated"] = result.annotated()
    if result.compressed_tokens >= result.original_tokens:
        return StageReport.skipped(
            NAME, result.notes[0] if result.notes else "nothing was removed", **details
        )
    return StageReport(
        NAME,
        applied=True,
        tokens_in=result.original_tokens,
        tokens_out=result.compressed_tokens,
        time_s=sum(result.timings.values()),
        details=details,
    )


def stage(backend: Backend, settings: Settings) -> CompressStage:
    return CompressStage(backend, settings)
