"""`lookalike serve --workers 2` as users run it: /metrics counts every worker's requests, so the
same counter reads the same on every scrape, whichever worker answers it."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

KEY = "workers-test-key-0123456789"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def two_workers(tmp_path: Path) -> Iterator[str]:
    """The service with two worker processes on loopback, stopped (with its workers) afterwards."""
    port = free_port()
    environment = {**os.environ, "LOOKALIKE_API_KEY": KEY}
    environment.pop("PROMETHEUS_MULTIPROC_DIR", None)
    command = [sys.executable, "-m", "lookalike", "serve", "--index", str(tmp_path / "index.db")]
    process = subprocess.Popen(
        [*command, "--port", str(port), "--workers", "2"],
        cwd=tmp_path,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while time.time() < deadline and process.poll() is None:
            try:
                httpx.get(url + "/static/app.js", timeout=2)  # not counted by the test below
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=20)
        if process.stderr is not None:
            process.stderr.close()


def counter(text: str, route: str) -> float:
    pattern = rf'^lookalike_requests_total\{{method="GET",route="{re.escape(route)}",status="200"\}} (\S+)$'
    found = re.search(pattern, text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


@pytest.mark.slow
def test_metrics_count_every_workers_requests_on_every_scrape(two_workers: str) -> None:
    answered = 0
    for _ in range(40):  # a new connection each time: the workers share them out
        answered += httpx.get(two_workers + "/healthz", timeout=10).status_code == 200
    scrapes = []
    for _ in range(8):
        response = httpx.get(two_workers + "/metrics", timeout=10)
        assert response.status_code == 200
        scrapes.append(response.text)
    assert answered == 40
    assert [counter(text, "/healthz") for text in scrapes] == [40.0] * 8
    # A scrape counts the scrapes before it (its own is counted once it has been answered).
    assert [counter(text, "/metrics") for text in scrapes] == [float(n) for n in range(8)]
    assert all("lookalike_index_entries 0.0" in text for text in scrapes)
