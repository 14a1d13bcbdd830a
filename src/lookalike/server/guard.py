"""What every request passes before a route runs, and the headers every response carries.

1. Host: the Host header must name this service (`ServerConfig.allowed_hosts`). A page on another
   site that points its own DNS name at 127.0.0.1 (DNS rebinding) sends its own name: refused.
2. Access: when the request needs a key (`auth.access_needed`), it is checked here, before the
   body is read, so a client without one cannot make the service read 20 MB first.
3. Every response, errors included, carries security headers: a Content-Security-Policy that lets
   pages run only the service's own script files, no framing, no type sniffing, no referrer.
"""

from __future__ import annotations

from lookalike.server.auth import access_needed, bearer_token, key_is_valid
from lookalike.server.config import ANY_HOST, ServerConfig
from lookalike.server.errors import error_response
from lookalike.server.limits import ASGIApp, Message, Receive, Scope, Send

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS: list[tuple[bytes, bytes]] = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-resource-policy", b"same-origin"),
]
_OURS = {name for name, _ in SECURITY_HEADERS}


class RequestGuard:
    """ASGI middleware: host check, key check, security headers (see the module docstring)."""

    def __init__(self, app: ASGIApp, config: ServerConfig) -> None:
        self.app = app
        self.config = config

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in _OURS]
                message = {**message, "headers": kept + SECURITY_HEADERS}
            await send(message)

        headers = {name.lower(): value.decode("latin-1") for name, value in scope.get("headers") or []}
        if not host_allowed(headers.get(b"host"), self.config.allowed_hosts):
            refusal = error_response(400, "bad_host", "this service does not answer to that Host name")
            await refusal(scope, receive, send_with_headers)
            return
        needed = access_needed(scope.get("method", ""), scope.get("path", ""))
        if needed == "write" or (needed == "read" and not self.config.public_reads):
            token = bearer_token(headers.get(b"authorization", ""))
            if not key_is_valid(token, self.config.api_keys):
                message = "a valid API key is required (Authorization: Bearer <key>)"
                await error_response(401, "unauthorized", message)(scope, receive, send_with_headers)
                return
        await self.app(scope, receive, send_with_headers)


def host_allowed(host_header: str | None, allowed: tuple[str, ...]) -> bool:
    """Whether a Host header value (`name`, `name:port`, `[v6]:port`) names an allowed host; a
    request without one (HTTP/1.0) cannot come from a browser page, and passes."""
    if ANY_HOST in allowed or host_header is None:
        return True
    host = host_header.strip().lower()
    if host.startswith("["):
        name = host[1 : host.find("]")] if "]" in host else host
    else:
        name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    return name.rstrip(".") in allowed
