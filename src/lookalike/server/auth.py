"""API keys: `Authorization: Bearer <key>`, compared in constant time."""

from __future__ import annotations

import hmac

from fastapi import Request

from lookalike.server.errors import ApiError


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def key_is_valid(token: str | None, keys: tuple[str, ...]) -> bool:
    """True if `token` equals one of `keys`; every key is compared, in constant time."""
    if token is None:
        return False
    supplied = token.encode("utf-8", "surrogateescape")
    valid = False
    for key in keys:
        valid |= hmac.compare_digest(supplied, key.encode("utf-8"))
    return valid


def require_key(request: Request) -> None:
    """Dependency of every write endpoint (and of reads when reads are closed)."""
    keys: tuple[str, ...] = request.app.state.config.api_keys
    if not key_is_valid(bearer_token(request), keys):
        raise ApiError(401, "unauthorized", "a valid API key is required (Authorization: Bearer <key>)")


def require_read_access(request: Request) -> None:
    if not request.app.state.config.public_reads:
        require_key(request)
