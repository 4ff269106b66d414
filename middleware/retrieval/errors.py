"""What can go wrong in retrieval that a user can fix; each error carries the HTTP status a proxy
should answer with (`http_status`), so stages and the CLI stay free of HTTP."""

from __future__ import annotations


class RetrievalError(ValueError):
    """Base class: a one-sentence message, an HTTP status and an OpenAI-style error code.

    A ValueError, so that the proxy's ValueError handler answers it with its own status."""

    http_status = 400
    code = "invalid_value"

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


class InvalidInput(RetrievalError):
    """An empty query, a bad corpus name, a duplicate document id, a bad option value (400)."""


class UnknownCorpus(RetrievalError):
    http_status = 404
    code = "corpus_not_found"


class UnknownDocument(RetrievalError):
    http_status = 404
    code = "document_not_found"


class CorpusExists(RetrievalError):
    http_status = 409
    code = "corpus_exists"


class CorpusBusy(RetrievalError):
    """Another writer (the CLI, another server) held the corpus lock for longer than we wait (409)."""

    http_status = 409
    code = "corpus_busy"


class NotText(RetrievalError):
    """A document that is not UTF-8 text (binary, another encoding): 415 Unsupported Media Type."""

    http_status = 415
    code = "unsupported_media_type"


class IncompatibleCorpus(RetrievalError):
    """A corpus on disk written by another format version or embedding model than asked (422)."""

    http_status = 422
    code = "incompatible_corpus"
