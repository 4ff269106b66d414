"""The error taxonomy shared by every layer. Two families, and nothing else reaches a client as a 4xx:

- `UserError`: the caller can fix it (a bad parameter, an unknown resource, a request this backend cannot
  serve as asked). It carries the HTTP status a proxy answers with (4xx), an OpenAI-style `code` and the
  `param` it is about. Stages, the CLI and the SDK raise it; the proxy renders it, the CLI prints it.
- `BackendError`: the model server failed (502) or cannot be reached (503), with its own words.

Anything else is a bug: the proxy answers 500 with a request id and logs the traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """An error the caller can fix. `status` is the HTTP status (4xx), `param` the field it is about."""

    status: int = 400
    code: str = "invalid_value"
    param: str | None = None

    def __init__(
        self, message: str, *, param: str | None = None, code: str | None = None, status: int | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        if param is not None:
            self.param = param
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status


class InvalidRequest(UserError, ValueError):
    """A parameter is missing, of the wrong type or out of range (400). Also a ValueError, as Python code
    expects of a bad value; the proxy answers 400 because it is a UserError, never because of that."""


class NotFound(UserError):
    status = 404
    code = "not_found"


class UnsupportedRequest(UserError):
    """A valid request this backend cannot serve as asked: a capability it lacks, a prompt longer than its
    context (422)."""

    status = 422
    code = "unsupported_request"


class MissingDependency(UserError):
    """The request asks for a feature whose optional package is not installed here (501)."""

    status = 501
    code = "not_implemented"


class BackendError(Exception):
    """The backend failed or answered with an error; `status` is what the proxy should return (502/503)."""

    def __init__(self, message: str, *, status: int = 502, backend: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.backend = backend


class BackendUnavailable(BackendError):
    """The backend cannot be reached or is not ready (the proxy answers 503)."""

    def __init__(self, message: str, *, backend: str = "") -> None:
        super().__init__(message, status=503, backend=backend)
