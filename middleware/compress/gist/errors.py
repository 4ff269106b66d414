"""What can go wrong when making or using a gist, as exceptions whose message a user can act on.

The proxy maps them to OpenAI-shaped errors (`http_status`), the CLI prints the message as one line.
"""

from __future__ import annotations

from ...user_errors import UserError


class GistError(UserError):
    """A gist cannot be made or used as asked. `http_status` is the HTTP status the proxy answers with."""


class PrefixTooShort(GistError):
    """The prefix has so few tokens that k soft tokens would save next to nothing."""

    param = "prefix"


class TooManyGistTokens(GistError):
    """k is not smaller than the prefix it would replace."""

    param = "tokens"


class GistNotFound(GistError):
    http_status = 404
    param = "id"


class WrongModel(GistError):
    """The gist was trained for other weights; soft tokens mean nothing to another model."""

    http_status = 422
    param = "id"


class GistUnusable(GistError):
    """A valid gist that cannot serve this request (its prefix is not there, the backend lacks something)."""

    http_status = 422
