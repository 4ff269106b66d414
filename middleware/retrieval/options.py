"""The `promptfold.retrieval` options of one request.

{"retrieval": {"corpus": "docs", "top_k": 5}}               passages from a stored corpus
{"retrieval": {"top_k": 3}}                                  keep the 3 documents of the prompt
                                                             (Document [i](Title: ...) blocks)
                                                             most relevant to its question
{"retrieval": {"documents": [{"text": ..., "source": ...}]}} pick passages from these documents
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class DocumentOption(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str | None = None
    title: str | None = None
    source: str | None = None
    text: str = Field(min_length=1)


class RetrievalOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(True, description="false turns a server default off for this request")
    corpus: str | None = Field(None, description="stored corpus to retrieve from")
    documents: list[DocumentOption | str] | None = Field(
        None, max_length=2000, description="documents to pick passages from (instead of a corpus)"
    )
    top_k: int = Field(5, ge=1, le=100, description="most passages (or prompt documents) kept")
    token_budget: int | None = Field(None, ge=1, description="most tokens the kept passages may take")
    query: str | None = Field(None, description="what to retrieve for (default: the question)")
    mmr: float | None = Field(None, ge=0.0, le=1.0, description="MMR lambda (1 relevance .. 0 diversity)")
    order: Literal["relevance", "original"] = Field(
        "relevance", description="order of kept prompt documents: most relevant first, or as sent"
    )
    min_documents: int = Field(2, ge=1, description="fewer prompt documents than this: nothing to select")

    @model_validator(mode="after")
    def _one_source(self) -> RetrievalOptions:
        if self.corpus is not None and self.documents is not None:
            raise ValueError("give either 'corpus' or 'documents', not both")
        return self
