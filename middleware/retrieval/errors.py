"""What can go wrong in retrieval that a user can fix; each error carries the HTTP status a proxy
should answer with (`status`), so stages and the CLI stay free of HTTP."""

from __future__ import annotations

from ..user_errors import InvalidRequest, UserError


class RetrievalError(UserError):
    """Base class of retrieval's errors (see UserError: message, HTTP status, OpenAI-style code)."""

    code = "invalid_value"


class InvalidInput(RetrievalError, InvalidRequest):
    """An empty query, a bad corpus name, a duplicate document id, a bad option value (400)."""


class UnknownCorpus(RetrievalError):
    status = 404
    code = "corpus_not_found"


class UnknownDocument(RetrievalError):
    status = 404
    code = "document_not_found"


class CorpusExists(RetrievalError):
    status = 409
    code = "corpus_exists"


class CorpusBusy(RetrievalError):
    """Another writer (the CLI, another server) held the corpus lock for longer than we wait (409)."""

    status = 409
    code = "corpus_busy"


class NotText(RetrievalError):
    """A document that is not UTF-8 text (binary, another encoding): 415 Unsupported Media Type."""

    status = 415
    code = "unsupported_media_type"


class IncompatibleCorpus(RetrievalError):
    """A corpus on disk written by another format version or embedding model than asked (422)."""

    status = 422
    code = "incompatible_corpus"
