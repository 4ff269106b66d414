"""The base of every error a user can fix, re-exported from the backend's taxonomy (`backend.errors`):
a one-sentence message, the HTTP status a proxy answers with (`status`), an OpenAI-style `code` and the
`param` it is about, so that stages and the CLI stay free of HTTP."""

from __future__ import annotations

from backend.errors import InvalidRequest, MissingDependency, NotFound, UnsupportedRequest, UserError

__all__ = ["InvalidRequest", "MissingDependency", "NotFound", "UnsupportedRequest", "UserError"]
