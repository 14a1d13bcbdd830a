"""Request limits enforced while the body streams in, and image types sniffed from the bytes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MULTIPART_OVERHEAD = 64 * 1024  # form fields and part headers around an upload


class BodyTooLarge(Exception):
    """The request body passed its limit while streaming."""


class BodyTimeout(Exception):
    """The client stopped sending the body."""


class BodyLimitMiddleware:
    """Refuses bodies over the route's limit (by Content-Length up front, else while reading),
    and bodies whose next chunk takes longer than `timeout` seconds to arrive (slow clients)."""

    def __init__(self, app: ASGIApp, limit_for: Callable[[str], int], timeout: float) -> None:
        self.app = app
        self.limit_for = limit_for
        self.timeout = timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope.get("path", ""))
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > limit
            except ValueError:
                await _reply(send, 400, "bad_request", "invalid Content-Length")
                return
            if too_big:
                await _reply(send, 413, "payload_too_large", f"the body exceeds the limit of {limit} bytes")
                return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            try:
                message = await asyncio.wait_for(receive(), self.timeout)
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
            await reply_for(signal, send, limit)


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


async def reply_for(signal: BodyTooLarge | BodyTimeout, send: Send, limit: int) -> None:
    if isinstance(signal, BodyTimeout):
        await _reply(send, 408, "request_timeout", "the request body arrived too slowly")
    else:
        await _reply(send, 413, "payload_too_large", f"the body exceeds the limit of {limit} bytes")


async def _reply(send: Send, status: int, code: str, message: str) -> None:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


# First bytes of the formats the service accepts; anything else is refused before decoding.
_SIGNATURES: tuple[tuple[int, bytes, str], ...] = (
    (0, b"\xff\xd8\xff", "JPEG"),
    (0, b"\x89PNG\r\n\x1a\n", "PNG"),
    (0, b"GIF87a", "GIF"),
    (0, b"GIF89a", "GIF"),
    (0, b"BM", "BMP"),
    (0, b"II*\x00", "TIFF"),
    (0, b"MM\x00*", "TIFF"),
)
_ISO_BRANDS = {
    b"heic": "HEIF",
    b"heix": "HEIF",
    b"mif1": "HEIF",
    b"msf1": "HEIF",
    b"avif": "AVIF",
    b"avis": "AVIF",
}


def sniff_image_type(head: bytes) -> str | None:
    """The image format the bytes begin with, or None (the client's Content-Type is ignored)."""
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if head[4:8] == b"ftyp" and head[8:12] in _ISO_BRANDS:
        return _ISO_BRANDS[head[8:12]]
    for offset, signature, name in _SIGNATURES:
        if head[offset : offset + len(signature)] == signature:
            return name
    return None
