"""uvicorn's HTTP/1.1 protocol with the two guards a service facing hostile clients needs.

- Headers arrive on a clock: a request's headers must be complete `HEADER_TIMEOUT_SECONDS` after
  the connection became ready for them (opened, or the previous response sent). uvicorn alone
  forgets its keep-alive timer at the first byte, so a client that trickles a header line now
  and then held the connection open for as long as it liked; so did one that kept sending a
  body after its answer. A request being served is left to the body's own deadline
  (`limits.BodyLimitMiddleware`).
- The server's own answer to a malformed request is the API's JSON error, not plain text.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

HEADER_TIMEOUT_SECONDS = 10.0
PROTOCOL = "lookalike.server.protocol:GuardedH11Protocol"  # as uvicorn's `http` setting takes it


class GuardedH11Protocol(H11Protocol):
    """`H11Protocol` with a total deadline for request headers and JSON 400s (module docstring)."""

    header_timeout_seconds = HEADER_TIMEOUT_SECONDS
    _header_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_header_clock()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._start_header_clock()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_header_clock()
        super().connection_lost(exc)

    def _start_header_clock(self) -> None:
        self._stop_header_clock()
        self._header_deadline = self.loop.call_later(self.header_timeout_seconds, self._headers_overdue)

    def _stop_header_clock(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _headers_overdue(self) -> None:
        self._header_deadline = None
        if self.cycle is not None and not self.cycle.response_complete:
            return  # a request is being served: its body has a deadline of its own
        if not self.transport.is_closing():
            self.logger.info("closing a connection whose request headers did not arrive in time")
            self.transport.close()

    def send_400_response(self, msg: str) -> None:
        body = json.dumps({"error": {"code": "bad_request", "message": "malformed HTTP request"}}).encode()
        headers: list[tuple[bytes, bytes]] = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        for event in (
            h11.Response(status_code=400, headers=headers),
            h11.Data(data=body),
            h11.EndOfMessage(),
        ):
            output = self.conn.send(event)
            if output:
                self.transport.write(output)
        self.transport.close()


def uvicorn_settings(**settings: Any) -> dict[str, Any]:
    """uvicorn.run / uvicorn.Config keyword arguments with the guarded protocol (`settings` win)."""
    return {"http": PROTOCOL, "timeout_keep_alive": 5, "log_level": "warning", **settings}
