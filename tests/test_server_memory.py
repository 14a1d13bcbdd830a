"""An upload under the limits costs a real `lookalike serve` process at most 300 MB, whatever its mode.

The hostile files are small on the wire and large once decoded: a 16-bit PNG of 7000x7000 (95 KB),
a float TIFF, a 35-byte GIF whose screen is 7000x7000, an animated one, and an RGB PNG at the
memory ceiling that its EXIF orientation makes the decoder copy. Each goes through every endpoint
that decodes; the service's peak resident memory (VmHWM, reset before each request) is measured
against its resident memory when idle. One over the ceiling is refused before it is decoded.
"""

from __future__ import annotations

import io
import os
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

from conftest import COMMITTED_PHOTOS

KEY = "memory-test-key-0123456789"
MB = 1 << 20
BUDGET = 300 * MB  # above idle, for any single upload under the limits
ENDPOINTS = ["/v1/hash", "/v1/check", "/v1/search", "/v1/images"]


def gif_bomb(width: int, height: int, frames: int = 1) -> bytes:
    """A GIF whose logical screen is width x height, drawn by 1x1 frames (35 bytes for one)."""
    head = b"GIF89a" + struct.pack("<HHBBB", width, height, 0x80, 0, 0) + b"\x00\x00\x00\xff\xff\xff"
    frame = b"\x2c" + struct.pack("<HHHHB", 0, 0, 1, 1, 0) + b"\x02\x02\x44\x01\x00"
    control = b"\x21\xf9\x04\x00\x0a\x00\x00\x00"  # 0.1 s a frame
    body = frame if frames == 1 else b"".join(control + frame for _ in range(frames))
    return head + body + b"\x3b"


def encoded(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def rotated_rgb_png(side: int) -> bytes:
    """An RGB PNG of side x side whose EXIF orientation (6) makes the decoder transpose it."""
    exif = Image.Exif()
    exif[0x0112] = 6
    with Image.open(COMMITTED_PHOTOS[0]) as photo:
        return encoded(photo.convert("RGB").resize((side, side)), "PNG", exif=exif.tobytes())


@pytest.fixture(scope="module")
def bombs() -> dict[str, bytes]:
    return {
        "16-bit PNG 7000x7000": encoded(Image.new("I;16", (7000, 7000), 1000), "PNG"),
        "float TIFF 5000x5000": encoded(Image.new("F", (5000, 5000), 0.5), "TIFF", compression="tiff_lzw"),
        "GIF 7000x7000": gif_bomb(7000, 7000),
        "animated GIF 7000x7000": gif_bomb(7000, 7000, frames=3),
        "rotated RGB PNG 5000x5000": rotated_rgb_png(5000),
    }


def memory(pid: int, field: str) -> int:
    """A /proc/<pid>/status memory field (VmRSS, VmHWM) in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} for process {pid}")


def reset_peak(pid: int) -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # VmHWM := VmRSS


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[httpx.Client, int]]:
    """`lookalike serve` in its own process on a free loopback port; (client, its pid)."""
    folder = tmp_path_factory.mktemp("memory")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    env = {**os.environ, "LOOKALIKE_API_KEY": KEY, "LOOKALIKE_CACHE_DIR": str(folder)}
    command = [sys.executable, "-m", "lookalike", "serve", "--index", f"sqlite:///{folder}/index.db"]
    process = subprocess.Popen([*command, "--port", str(port)], env=env, stderr=subprocess.DEVNULL)
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120)
    try:
        deadline = time.time() + 60
        while True:
            try:
                if client.get("/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.time() < deadline and process.poll() is None, "the service did not start"
            time.sleep(0.2)
        yield client, process.pid
    finally:
        client.close()
        process.terminate()
        process.wait(timeout=30)


def post(client: httpx.Client, endpoint: str, data: bytes, name: str) -> httpx.Response:
    fields = {"dihedral": "true"} if endpoint == "/v1/search" else {}
    if endpoint == "/v1/images":
        fields = {"id": name}
    headers = {"Authorization": f"Bearer {KEY}"}
    return client.post(endpoint, files={"file": ("upload", data)}, data=fields, headers=headers)


@pytest.mark.slow
def test_hostile_uploads_under_the_limits_cost_at_most_300_mb(
    service: tuple[httpx.Client, int], bombs: dict[str, bytes]
) -> None:
    client, pid = service
    normal = COMMITTED_PHOTOS[1].read_bytes()
    for endpoint in ENDPOINTS:  # every code path loaded once before idle is measured
        assert post(client, endpoint, normal, "warm-up").status_code in (200, 201)
    idle = memory(pid, "VmRSS")
    peaks = {}
    for name, data in bombs.items():
        for endpoint in ENDPOINTS:
            reset_peak(pid)
            response = post(client, endpoint, data, name)
            assert response.status_code in (200, 201), (name, endpoint, response.text)
            peaks[name, endpoint] = memory(pid, "VmHWM") - idle
    worst = max(peaks, key=lambda key: peaks[key])
    assert peaks[worst] <= BUDGET, f"{worst}: {peaks[worst] / MB:.0f} MB above idle ({idle / MB:.0f} MB)"


@pytest.mark.slow
def test_an_image_over_the_memory_ceiling_is_refused_before_decoding(
    service: tuple[httpx.Client, int],
) -> None:
    client, pid = service
    idle = memory(pid, "VmRSS")
    reset_peak(pid)
    float_bomb = encoded(Image.new("F", (7000, 7000)), "TIFF", compression="tiff_deflate")  # 196 MB of pixels
    response = post(client, "/v1/hash", float_bomb, "too-big")
    assert response.status_code == 413 and response.json()["error"]["code"] == "image_too_large"
    assert "MB to decode" in response.json()["error"]["message"]
    assert memory(pid, "VmHWM") - idle < 50 * MB
