"""An unreachable ClickHouse server is one clean error: no driver traceback, no log noise."""

from __future__ import annotations

import logging
import socket
import subprocess
import sys

import pytest

from lookalike.errors import IndexStoreError, IndexUnreachableError
from lookalike.index import open_index


def _closed_port() -> int:
    """A loopback port nothing listens on (bound once by us, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_the_command_line_prints_one_error_line_and_exits_1() -> None:
    url = f"clickhouse://default@127.0.0.1:{_closed_port()}/photos"
    done = subprocess.run(
        [sys.executable, "-m", "lookalike", "index", "stats", "--index", url],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: clickhouse://default@127.0.0.1:")
    assert "cannot reach the server" in lines[0] and "Connection refused" in lines[0]
    assert done.stdout == ""


def test_the_python_api_raises_a_lookalike_error_and_logs_no_traceback(
    capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    url = f"clickhouse://default@127.0.0.1:{_closed_port()}/photos"
    caplog.set_level(logging.DEBUG)  # even with logging configured, nothing repeats the error
    with pytest.raises(IndexUnreachableError, match="cannot reach the server") as raised:
        open_index(url)
    assert isinstance(raised.value, IndexStoreError)
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING]
    assert capfd.readouterr().err == ""
