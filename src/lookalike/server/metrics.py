"""Prometheus metrics: requests by route and status, latencies, index size.

With several server processes (`lookalike serve --workers N`), a scrape reaches one of them, so
each process's own counts would alternate from scrape to scrape. There the metrics use
prometheus_client's multiprocess mode: every process writes its values to files in one folder
(`PROMETHEUS_MULTIPROC_DIR`, which `shared_metrics_folder` makes for the server's lifetime), and a
scrape sums them, whichever process answers.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Iterator

from fastapi import Response
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector

from lookalike.server.limits import ASGIApp, Message, Receive, Scope, Send

MULTIPROCESS_FOLDER = "PROMETHEUS_MULTIPROC_DIR"  # prometheus_client reads it when first imported


@contextlib.contextmanager
def shared_metrics_folder() -> Iterator[str]:
    """A fresh folder for the metrics of the server processes started inside (they inherit the
    environment), removed afterwards; a folder the user set already is used, and left alone."""
    if os.environ.get(MULTIPROCESS_FOLDER):
        yield os.environ[MULTIPROCESS_FOLDER]
        return
    folder = tempfile.mkdtemp(prefix="lookalike-metrics-")
    os.environ[MULTIPROCESS_FOLDER] = folder
    try:
        yield folder
    finally:
        del os.environ[MULTIPROCESS_FOLDER]
        shutil.rmtree(folder, ignore_errors=True)


class Metrics:
    """One registry per app, so several apps (tests) never share counters; in multiprocess mode
    the values live in the shared folder and a scrape sums every process's."""

    def __init__(self) -> None:
        self.shared_folder = os.environ.get(MULTIPROCESS_FOLDER) or None
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
        # Set by whichever process answers a scrape: the latest value is the one to show.
        self.index_entries = Gauge(
            "lookalike_index_entries",
            "Entries in the index",
            registry=self.registry,
            multiprocess_mode="mostrecent",
        )
        self.bank_hashes = Gauge(
            "lookalike_bank_hashes",
            "Hashes per bank",
            ["bank"],
            registry=self.registry,
            multiprocess_mode="mostrecent",
        )

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
        registry = self.registry
        if self.shared_folder is not None:
            registry = CollectorRegistry()
            MultiProcessCollector(registry, path=self.shared_folder)  # type: ignore[no-untyped-call]
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
