"""API keys (`Authorization: Bearer <key>`, compared in constant time) and which requests need one.

Access is decided from the method and path alone, before routing and before a byte of the body
is read (`guard.RequestGuard`): only the page, its static files and a bare `/healthz` are open to
all; the reads below need a key with `--private-reads`; every other request is a write and always
needs one, so a route added without a thought is closed, not open.
"""

from __future__ import annotations

import hmac
from typing import Literal

Access = Literal["open", "read", "write"]

OPEN_PATHS = frozenset({"/", "/healthz"})
OPEN_PREFIX = "/static/"
READ_POSTS = frozenset({"/v1/hash", "/v1/search", "/v1/check"})  # uploads that store nothing


def access_needed(method: str, path: str) -> Access:
    """What a request may be: open to all, a read (open unless reads are private), or a write."""
    if method in ("GET", "HEAD"):
        return "open" if path in OPEN_PATHS or path.startswith(OPEN_PREFIX) else "read"
    return "read" if method == "POST" and path in READ_POSTS else "write"


def bearer_token(authorization: str) -> str | None:
    """The key in an `Authorization: Bearer <key>` header value, or None."""
    scheme, _, token = authorization.partition(" ")
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
