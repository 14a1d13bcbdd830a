"""Small helpers for tests that run code in other processes (importable from there)."""

from __future__ import annotations

import contextlib
import random
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any


def random_hash_hex(seed: int, nbits: int = 256) -> str:
    """A deterministic random hash of `nbits` bits, as hex."""
    return format(random.Random(seed).getrandbits(nbits), f"0{nbits // 4}x")


@contextlib.contextmanager
def serving(app: Any) -> Iterator[tuple[str, int]]:
    """Run an ASGI app in a real uvicorn server on a free loopback port; yields (base URL, port)."""
    import uvicorn

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 15
    while not server.started and time.time() < deadline:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", port
    finally:
        server.should_exit = True
        thread.join(timeout=10)
