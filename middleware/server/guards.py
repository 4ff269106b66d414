"""Request guards: a maximum body size (413) and an optional API key (401)."""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request

from .errors import ApiError

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class BodySizeLimit:
    """ASGI middleware: a body over `max_bytes` gets 413 before the app sees it, declared size or not."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._reject(send)
            return
        # Chunked or honest bodies: read up to the limit, then replay them to the app.
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._reject(send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _reject(self, send: Send) -> None:
        error = ApiError(413, f"request body larger than {self.max_bytes} bytes", code="request_too_large")
        response = error.response()
        await send({"type": "http.response.start", "status": 413, "headers": response.raw_headers})
        await send({"type": "http.response.body", "body": response.body})


class RequestIds:
    """ASGI middleware: every request gets an id (the client's `x-request-id` when it sends a sane one),
    kept in `request.state.request_id` for errors and logs, and echoed in the `x-request-id` header."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sent = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        request_id = sent if _SANE_ID.fullmatch(sent) else f"req-{uuid.uuid4().hex[:24]}"
        scope.setdefault("state", {})["request_id"] = request_id

        async def with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"]
                message = {**message, "headers": [*headers, (b"x-request-id", request_id.encode())]}
            await send(message)

        await self.app(scope, receive, with_id)


_SANE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


class InternalErrors:
    """ASGI middleware: an exception no handler took (a bug) becomes a complete 500 response with the
    request id, logged with its traceback, instead of Starlette's re-raise (which made uvicorn drop a
    keep-alive connection under a pooled client). A stream that already started reports in-band."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception as error:
            if started:
                raise
            from .errors import from_exception

            request_id = (scope.get("state") or {}).get("request_id")
            response = from_exception(error, request_id).response()
            await send({"type": "http.response.start", "status": 500, "headers": response.raw_headers})
            await send({"type": "http.response.body", "body": response.body})


def api_key_checker(expected: str | None) -> Callable[[Request], Awaitable[None]]:
    """A FastAPI dependency that demands `Authorization: Bearer <expected>` when a key is configured."""

    async def check(request: Request) -> None:
        if expected is None:
            return
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise ApiError(
                401, "Missing API key: send 'Authorization: Bearer <key>'.", code="invalid_api_key"
            )
        if not secrets.compare_digest(token.strip().encode(), expected.encode()):
            raise ApiError(401, "Incorrect API key provided.", code="invalid_api_key")

    return check
