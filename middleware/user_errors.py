"""The base of every error a user can fix (bad input, an unknown resource, a request that cannot be
served): a one-sentence message, the HTTP status a proxy answers with and an OpenAI-style code, so that
stages and the CLI stay free of HTTP. A ValueError, which the proxy's ValueError handler answers."""

from __future__ import annotations


class UserError(ValueError):
    http_status = 400
    code: str | None = None  # None: the proxy derives one from the status
    param: str | None = None

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if param is not None:
            self.param = param
