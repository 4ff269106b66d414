"""What can go wrong when making or using a gist, as exceptions whose message a user can act on.

The proxy maps them to OpenAI-shaped errors (`status`), the CLI prints the message as one line.
"""

from __future__ import annotations

from ...user_errors import UserError


class GistError(UserError):
    """A gist cannot be made or used as asked. `status` is the HTTP status the proxy answers with."""


class PrefixTooShort(GistError):
    """The prefix has so few tokens that k soft tokens would save next to nothing."""

    param = "prefix"


class TooManyGistTokens(GistError):
    """k is not smaller than the prefix it would replace."""

    param = "tokens"


class GistNotFound(GistError):
    status = 404
    code = "not_found"
    param = "id"


class WrongModel(GistError):
    """The gist was trained for other weights; soft tokens mean nothing to another model."""

    status = 422
    code = "unsupported_request"
    param = "id"


class GistUnusable(GistError):
    """A valid gist that cannot serve this request (its prefix is not there, the backend lacks something)."""

    status = 422
    code = "unsupported_request"
