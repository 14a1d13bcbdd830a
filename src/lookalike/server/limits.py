"""Request limits enforced while the body streams in, and image types sniffed from the bytes."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from lookalike.server.errors import error_response

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MULTIPART_OVERHEAD = 64 * 1024  # form fields and part headers around an upload
SMALL_BODY = 64 * 1024  # every JSON body and form but an image upload or a hash list
UPLOAD_PATHS = frozenset({"/v1/hash", "/v1/images", "/v1/search", "/v1/check"})


def body_limit(scope: Scope, max_upload_bytes: int, max_list_bytes: int) -> int:
    """How many body bytes a request may send: an image upload (multipart, to the endpoints that
    take one) or a bank's hash list may be large; anything else is a small JSON body or form."""
    path = scope.get("path", "")
    content_type = dict(scope.get("headers") or []).get(b"content-type", b"").lower()
    if path in UPLOAD_PATHS and content_type.startswith(b"multipart/form-data"):
        return max_upload_bytes + MULTIPART_OVERHEAD
    if path.startswith("/v1/banks/") and path.endswith("/hashes"):
        return max_list_bytes
    return SMALL_BODY


class BodyTooLarge(Exception):
    """The request body passed its limit while streaming."""


class BodyTimeout(Exception):
    """The body was not complete by its deadline."""


class BodyLimitMiddleware:
    """Refuses bodies over the request's limit (by Content-Length up front, else while reading),
    and bodies not complete `timeout` seconds after the request started: a total, not a gap, so
    a client trickling a byte now and then is cut off as surely as one that stops."""

    def __init__(self, app: ASGIApp, limit_for: Callable[[Scope], int], timeout: float) -> None:
        self.app = app
        self.limit_for = limit_for
        self.timeout = timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > limit
            except ValueError:
                await _reply(scope, send, 400, "bad_request", "invalid Content-Length")
                return
            if too_big:
                await _reply(
                    scope, send, 413, "payload_too_large", f"the body exceeds the limit of {limit} bytes"
                )
                return
        received = 0
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout

        async def limited_receive() -> Message:
            nonlocal received
            try:
                message = await asyncio.wait_for(receive(), max(0.0, deadline - loop.time()))
            except asyncio.TimeoutError:
                raise BodyTimeout from None
            if message.get("type") == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge
            return message

        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message.get("type") == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except Exception as exc:
            signal = body_signal(exc)
            if signal is None or started:
                raise
            await reply_for(signal, scope, send, limit)


def body_signal(exc: BaseException | None) -> BodyTooLarge | BodyTimeout | None:
    """The body-limit signal behind an exception (frameworks wrap it in groups or as a cause)."""
    seen = 0
    while exc is not None and seen < 8:
        if isinstance(exc, (BodyTooLarge, BodyTimeout)):
            return exc
        grouped = getattr(exc, "exceptions", None)  # an exception group (Python >= 3.11, anyio)
        exc = grouped[0] if grouped else exc.__cause__ or exc.__context__
        seen += 1
    return None


async def reply_for(signal: BodyTooLarge | BodyTimeout, scope: Scope, send: Send, limit: int) -> None:
    if isinstance(signal, BodyTimeout):
        await _reply(scope, send, 408, "request_timeout", "the request body arrived too slowly")
    else:
        await _reply(scope, send, 413, "payload_too_large", f"the body exceeds the limit of {limit} bytes")


async def _reply(scope: Scope, send: Send, status: int, code: str, message: str) -> None:
    """The JSON error, closing the connection: the rest of the body is not worth reading."""
    response = error_response(status, code, message)
    response.headers["connection"] = "close"

    async def nothing() -> Message:
        return {"type": "http.disconnect"}

    await response(scope, nothing, send)
