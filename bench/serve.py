"""Load test of `lookalike serve`: hex searches and image uploads against a 1M-hash index.

The server runs as its own process (`lookalike serve`, one uvicorn worker); the load comes from a
second process on loopback with a fixed number of concurrent connections, bounded in requests and
time. Reports requests/s, p50/p99 latency and errors, with the load average at the time (this
machine is shared: other jobs hold its cores at times).

    python bench/serve.py                       # 1M PDQ hashes, 20 s per phase
    python bench/serve.py --hashes 100000 --seconds 5
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
KEY = "bench-key-0123456789abcdef"


def build_index(path: Path, count: int, seed: int = 7) -> np.ndarray:
    """`count` random PDQ hashes (256 bits) under keys h0..h{count-1}; returns their words."""
    from lookalike.index.sqlite import SQLiteIndex

    rng = np.random.default_rng(seed)
    words = rng.integers(0, 2**63, size=(count, 4), dtype=np.int64).astype(np.uint64) * np.uint64(2)
    words |= rng.integers(0, 2, size=(count, 4), dtype=np.int64).astype(np.uint64)
    if path.exists():
        return words
    index = SQLiteIndex.open(str(path))
    started = time.perf_counter()
    index.add_words([f"h{i}" for i in range(count)], "pdq", words, 256, [100] * count)
    index.persist_search(force=True)
    index.close()
    print(f"built {count:,} PDQ hashes in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return words


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_server(index: Path, port: int, state: Path, workers: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "LOOKALIKE_API_KEY": KEY}
    command = [sys.executable, "-m", "lookalike", "serve", "--index", f"sqlite:///{index}",
               "--port", str(port), "--banks-dir", str(state), "--workers", str(workers)]  # fmt: skip
    process = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)
    import httpx

    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=60).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.3)
    process.kill()
    raise SystemExit("the server did not start")


class Connection:
    """A minimal HTTP/1.1 keep-alive client on asyncio streams: the load generator must cost far
    less CPU than the server it measures (httpx spent about as much per request as the server)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, raw: bytes) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        await self.reader.readexactly(length)
        return status


def http_request(path: str, body: bytes, content_type: str) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: keep-alive\r\n\r\n"
    )
    return head.encode() + body


def multipart(image: bytes, fields: dict[str, str]) -> tuple[bytes, str]:
    boundary = "lookalikebench"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="q.jpg"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n".encode()
        + image
        + b"\r\n"
    )
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


async def drive(url: str, kind: str, seconds: float, max_requests: int, concurrency: int,
                payloads: list[bytes]) -> dict[str, float]:  # fmt: skip
    host, port = url.removeprefix("http://").split(":")
    if kind == "hex":
        requests = [http_request("/v1/search", body, "application/json") for body in payloads]
    else:
        requests = [http_request("/v1/search", *multipart(body, {"max_distance": "31"})) for body in payloads]
    latencies: list[float] = []
    errors = 0
    sent = 0
    stop_at = time.perf_counter() + seconds

    async def worker(offset: int) -> None:
        nonlocal errors, sent
        connection = Connection(host, int(port))
        turn = offset
        while time.perf_counter() < stop_at and sent < max_requests:
            sent += 1
            raw = requests[turn % len(requests)]
            turn += concurrency
            started = time.perf_counter()
            try:
                if await connection.request(raw) != 200:
                    errors += 1
            except (OSError, asyncio.IncompleteReadError, ValueError):
                errors += 1
                connection = Connection(host, int(port))
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    elapsed = time.perf_counter() - started
    ordered = sorted(latencies)
    return {
        "requests": len(latencies),
        "rps": len(latencies) / elapsed,
        "p50_ms": 1000 * statistics.median(ordered),
        "p99_ms": 1000 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))],
        "errors": errors,
    }


def hex_payloads(words: np.ndarray, count: int) -> list[bytes]:
    """Half planted near-copies of stored hashes (a few bits flipped), half random hashes."""
    rng = np.random.default_rng(3)
    payloads = []
    for i in range(count):
        if i % 2 == 0:
            row = words[rng.integers(len(words))].copy()
            for _ in range(int(rng.integers(0, 12))):
                bit = int(rng.integers(256))
                row[bit // 64] ^= np.uint64(1) << np.uint64(63 - bit % 64)
        else:
            row = rng.integers(0, 2**63, size=4, dtype=np.int64).astype(np.uint64)
        text = "".join(f"{int(w):016x}" for w in row)
        payloads.append(json.dumps({"hashes": {"pdq": text}, "max_distance": 31}).encode())
    return payloads


def upload_payloads() -> list[bytes]:
    from PIL import Image

    photos = sorted((ROOT / "tests" / "fixtures" / "photos").glob("*.jpg"))
    payloads = []
    for photo in photos:
        buffer = io.BytesIO()
        Image.open(photo).convert("RGB").resize((640, 427)).save(buffer, "JPEG", quality=90)
        payloads.append(buffer.getvalue())
    return payloads


def client_main(arguments: argparse.Namespace) -> None:
    """The load process: reads its payload file, drives the server, prints JSON results."""
    payloads = [bytes.fromhex(line) for line in Path(arguments.payloads).read_text().split()]
    result = asyncio.run(
        drive(
            arguments.url,
            arguments.kind,
            arguments.seconds,
            arguments.max_requests,
            arguments.concurrency,
            payloads,
        )
    )
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--hashes", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--max-requests", type=int, default=50_000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2, help="server processes")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "lookalike-bench")
    parser.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--kind", help=argparse.SUPPRESS)
    parser.add_argument("--payloads", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.client:
        client_main(arguments)
        return
    arguments.cache.mkdir(parents=True, exist_ok=True)
    index = arguments.cache / f"serve-{arguments.hashes}.db"
    words = build_index(index, arguments.hashes)
    port = free_port()
    server = start_server(index, port, arguments.cache / f"serve-{arguments.hashes}.state", arguments.workers)
    rows = []
    try:
        phases = [("hex PDQ search, r=31", "hex", hex_payloads(words, 2000), arguments.concurrency),
                  ("image upload + search", "upload", upload_payloads(), 2)]  # fmt: skip
        for label, kind, payloads, concurrency in phases:
            with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as handle:
                handle.write("\n".join(p.hex() for p in payloads))
            load = os.getloadavg()[0]
            done = subprocess.run(
                [sys.executable, __file__, "--client", "--url", f"http://127.0.0.1:{port}", "--kind", kind,
                 "--payloads", handle.name, "--seconds", str(arguments.seconds),
                 "--max-requests", str(arguments.max_requests), "--concurrency", str(concurrency)],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            os.unlink(handle.name)
            result = json.loads(done.stdout)
            rows.append((label, concurrency, result, load))
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(f"\nlookalike serve --workers {arguments.workers}, {arguments.hashes:,}-hash PDQ index, "
          "client in a second process on loopback\n")  # fmt: skip
    header = ("workload", "conc", "requests", "req/s", "p50 ms", "p99 ms", "errors", "load")
    print(f"{header[0]:<26}" + "".join(f"{h:>9}" for h in header[1:]))
    for label, concurrency, result, load in rows:
        values = (
            concurrency,
            result["requests"],
            result["rps"],
            result["p50_ms"],
            result["p99_ms"],
            result["errors"],
        )
        print(
            f"{label:<26}"
            + "".join(f"{v:>9.1f}" if isinstance(v, float) else f"{v:>9}" for v in values)
            + f"{load:>9.2f}"
        )


if __name__ == "__main__":
    main()
