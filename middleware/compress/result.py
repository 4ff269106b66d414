"""What a compression returns: the text (or chat messages), token counts, what was dropped, timings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Piece:
    """A run of the original text that was kept or dropped."""

    text: str
    kept: bool


@dataclass
class CompressionResult:
    text: str  # the compressed prompt (for chat input: the compressed messages rendered one per line)
    original_tokens: int  # in the scoring model's tokenizer (the backend's, in the proxy)
    compressed_tokens: int
    target_tokens: int
    messages: list[dict[str, Any]] | None = None
    pieces: list[Piece] = field(default_factory=list)  # the original text, kept and dropped runs in order
    dropped_passages: list[int] = field(default_factory=list)  # context passage numbers dropped whole
    passage_order: list[int] = field(default_factory=list)  # kept passages in rendered order
    mode: str = "plain"
    timings: dict[str, float] = field(default_factory=dict)  # seconds per phase
    notes: list[str] = field(default_factory=list)
    # whether each compressed part came from the cache: [{"cache_hit": bool}] for a text, and
    # [{"message": i, "cache_hit": bool}] per compressed chat message
    cache: list[dict[str, Any]] = field(default_factory=list)
    scorer: str = ""  # the scorer kind that was asked for (local, backend, classifier), set by the service

    @property
    def ratio(self) -> float:
        """compressed / original tokens (0.25 = a quarter of the tokens are left)."""
        return self.compressed_tokens / self.original_tokens if self.original_tokens else 1.0

    @property
    def kept_mask(self) -> list[bool]:
        """Per character of the original text (as `pieces` spell it): True where it was kept."""
        return [p.kept for p in self.pieces for _ in p.text]

    def annotated(self) -> str:
        """The original text with dropped runs shown as [-dropped-]."""
        return "".join(p.text if p.kept else f"[-{p.text}-]" for p in self.pieces)

    def as_dict(self, *, annotated: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {
            "original_tokens": self.original_tokens,
            "compressed_tokens": self.compressed_tokens,
            "target_tokens": self.target_tokens,
            "ratio": round(self.ratio, 4),
            "mode": self.mode,
            "dropped_passages": self.dropped_passages,
            "passage_order": self.passage_order,
            "timings_s": {k: round(v, 4) for k, v in self.timings.items()},
            "notes": self.notes,
            "cache": self.cache,
        }
        if annotated:
            data["annotated"] = self.annotated()
        return data
