"""Input compression: LLMLingua / LongLLMLingua-style token pruning that keeps numbers, code, valid JSON,
URLs, markup pairs, equations and IDs intact and lands on the requested ratio.

    from middleware.compress import compress
    result = compress(text, rate=0.4)                       # or question="...", target_tokens=300
    print(result.text, result.ratio, result.annotated())

Modules: scorer (who rates tokens), structure/ (JSON, code, markup, reasoning lines and grapheme
clusters, found on the whole text before it is cut), spans (what is protected), units (what is kept or
dropped whole, or together), document (segments and roles), task (the instruction and question of a
whole prompt), coarse (passage ranking and dropping), fine (token budget selection), plans (plain and
question-aware), compressor (the orchestration), messages (chat requests), conversation (messages one by
one), cache, batching (a scorer shared by concurrent compressions), service (the one entry point: proxy
stage, /v1/compress, SDK, CLI, batch), stage (the proxy), result.
"""

from .api import acompress, compress, default_service
from .coarse import EmbeddingRanker, PassageRanker, PerplexityRanker
from .compressor import Compressor
from .options import CompressInputError, CompressOptions
from .result import CompressionResult, Piece
from .scorer import BackendScorer, LocalScorer, Scorer, ScoreRequest, TokenScores
from .service import CompressionService

__all__ = [
    "BackendScorer",
    "CompressInputError",
    "CompressOptions",
    "CompressionResult",
    "CompressionService",
    "Compressor",
    "EmbeddingRanker",
    "LocalScorer",
    "PassageRanker",
    "PerplexityRanker",
    "Piece",
    "ScoreRequest",
    "Scorer",
    "TokenScores",
    "acompress",
    "compress",
    "default_service",
]
