"""Request guards: a body size and time limit (413, 408), request ids, complete 500s for bugs, and an
optional API key (401)."""

from __future__ import annotations

import asyncio
import re
import secrets
import time
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
    """ASGI middleware: the request body is read whole before the app sees it, within limits, and the
    work for a client that goes away is cancelled.

    - over `max_bytes` (declared or as it arrives, chunked or not): 413;
    - not all there within `timeout_s` plus one second per `BYTES_PER_EXTRA_SECOND` received (a
      slow-drip client, or one that declared more than it sends): 408.
    Both answers say `Connection: close`: the rest of the body is never read, so the connection cannot
    carry another request. Once the body is read, the app runs as a task that is cancelled as soon as
    the client disconnects (`_serve_until_disconnect`): compression, scoring and generation stop
    instead of running for nobody.
    """

    BYTES_PER_EXTRA_SECOND = 128 * 1024

    def __init__(self, app: Any, max_bytes: int, timeout_s: float = 10.0) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._too_large(send)
            return
        # Chunked or honest bodies: read up to the limit, then replay them to the app.
        chunks: list[bytes] = []
        size = 0
        started = time.monotonic()
        while True:
            left = started + self.timeout_s + size / self.BYTES_PER_EXTRA_SECOND - time.monotonic()
            try:
                message = await asyncio.wait_for(receive(), timeout=max(left, 0.001))
            except TimeoutError:
                await self._too_slow(send, size)
                return
            if message["type"] == "http.disconnect":
                _client_gone(scope)
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._too_large(send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        await _serve_until_disconnect(self.app, scope, b"".join(chunks), receive, send)

    async def _too_large(self, send: Send) -> None:
        message = f"request body larger than {self.max_bytes} bytes (max_body_bytes)"
        await _answer_and_close(send, ApiError(413, message, code="request_too_large"))

    async def _too_slow(self, send: Send, received: int) -> None:
        message = (
            f"the request body did not arrive in time ({received} bytes in {self.timeout_s:g} s plus 1 s "
            f"per {self.BYTES_PER_EXTRA_SECOND // 1024} KiB; body_timeout_s)"
        )
        await _answer_and_close(send, ApiError(408, message, code="request_timeout"))


async def _serve_until_disconnect(app: Any, scope: Scope, body: bytes, receive: Receive, send: Send) -> None:
    """Run `app` on the already read `body`; a client that disconnects before the response is complete
    cancels it (asyncio cancellation: awaited backend calls stop, queued worker-pool steps are dropped;
    a step already running on a thread finishes). The app may still listen for the disconnect itself:
    its `receive` gives the body once, then `http.disconnect` when it happens."""
    gone = asyncio.Event()
    response_done = False
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        await gone.wait()
        return {"type": "http.disconnect"}

    async def watched_send(message: Message) -> None:
        nonlocal response_done
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            response_done = True
        await send(message)

    work = asyncio.ensure_future(app(scope, replay, watched_send))

    async def watch() -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
        gone.set()
        if not response_done and not work.done():
            _client_gone(scope)
            work.cancel()

    watcher = asyncio.ensure_future(watch())
    try:
        await work
    except asyncio.CancelledError:
        if gone.is_set() and not response_done:
            return  # we cancelled it: the client is gone, there is nobody to answer
        raise
    finally:
        watcher.cancel()
        if not work.done():  # our own task was cancelled (server shutdown): take the app down with it
            work.cancel()


def _client_gone(scope: Scope) -> None:
    """Tell the metrics (`metrics.Outcome`) that this request's client left before its answer."""
    outcome = (scope.get("state") or {}).get("outcome")
    if outcome is not None:
        outcome.client_gone = True


async def _answer_and_close(send: Send, error: ApiError) -> None:
    """Answer `error` with `Connection: close`: the server then closes the connection after the response,
    and the client knows not to send another request on it."""
    response = error.response(headers={"connection": "close"})
    await send({"type": "http.response.start", "status": error.status, "headers": response.raw_headers})
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
