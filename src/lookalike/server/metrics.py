"""Prometheus metrics: requests by route and status, latencies, index size."""

from __future__ import annotations

import time

from fastapi import Response
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from lookalike.server.limits import ASGIApp, Message, Receive, Scope, Send


class Metrics:
    """One registry per app, so several apps (tests) never share counters."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "lookalike_requests", "HTTP requests", ["method", "route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "lookalike_request_seconds",
            "HTTP request latency",
            ["route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.index_entries = Gauge("lookalike_index_entries", "Entries in the index", registry=self.registry)
        self.bank_hashes = Gauge("lookalike_bank_hashes", "Hashes per bank", ["bank"], registry=self.registry)

    def middleware(self, app: ASGIApp) -> ASGIApp:
        """An ASGI middleware counting requests by route template (not by raw path) and status."""

        async def measured(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            started = time.perf_counter()
            status = 500

            async def send_and_note(message: Message) -> None:
                nonlocal status
                if message.get("type") == "http.response.start":
                    status = int(message["status"])
                await send(message)

            try:
                await app(scope, receive, send_and_note)
            finally:
                route = getattr(scope.get("route"), "path", "unmatched")
                self.requests.labels(scope.get("method", ""), route, str(status)).inc()
                self.latency.labels(route).observe(time.perf_counter() - started)

        return measured

    def render(self) -> Response:
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)
