"""Small helpers for tests that run code in other processes (importable from there)."""

from __future__ import annotations

import contextlib
import os
import random
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw


def random_hash_hex(seed: int, nbits: int = 256) -> str:
    """A deterministic random hash of `nbits` bits, as hex."""
    return format(random.Random(seed).getrandbits(nbits), f"0{nbits // 4}x")


@contextlib.contextmanager
def serving(app: Any) -> Iterator[tuple[str, int]]:
    """Run an ASGI app in a real uvicorn server on a free loopback port, with the protocol settings
    `lookalike serve` uses; yields (base URL, port)."""
    import uvicorn

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    from lookalike.server.protocol import uvicorn_settings

    server = uvicorn.Server(
        uvicorn.Config(app, **uvicorn_settings(host="127.0.0.1", port=port, log_level="error"))
    )
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


@dataclass(frozen=True)
class ProcessStat:
    """What Linux's /proc/<pid>/stat says of a process that a test watches."""

    pid: int
    parent: int
    process_group: int
    cpu_seconds: float  # user + system time used so far


def process_stat(pid: int) -> ProcessStat | None:
    """/proc/<pid>/stat of a process, None once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return ProcessStat(pid, int(fields[1]), int(fields[2]), cpu)


def all_process_stats() -> Iterator[ProcessStat]:
    for folder in Path("/proc").iterdir():
        if folder.name.isdigit() and (stat := process_stat(int(folder.name))) is not None:
            yield stat


def chat_screenshot(photo: Image.Image) -> Image.Image:
    """A phone screenshot of a chat (540 x 1170 RGB): the app's bars and bubbles, and `photo`
    pasted as given below the bubbles."""
    page = Image.new("RGB", (540, 1170), (245, 245, 245))
    draw = ImageDraw.Draw(page)
    draw.rectangle((0, 0, 540, 90), fill=(30, 60, 110))
    draw.text((20, 30), "12:41   Messages   Alice Example", fill=(255, 255, 255))
    for row, line in enumerate(("Look at this one!", "Taken yesterday, unedited", "What do you think?")):
        top = 120 + row * 50
        draw.rounded_rectangle((20, top, 400, top + 38), radius=12, fill=(220, 230, 250))
        draw.text((32, top + 12), line, fill=(20, 20, 20))
    page.paste(photo.convert("RGB"), (30, 300))
    draw.rectangle((0, 1080, 540, 1170), fill=(230, 230, 230))
    draw.text((20, 1115), "Type a message", fill=(120, 120, 120))
    return page
