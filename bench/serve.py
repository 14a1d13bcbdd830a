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


async def drive(url: str, make_request: str, seconds: float, max_requests: int, concurrency: int,
                payloads: list[bytes]) -> dict[str, float]:  # fmt: skip
    import httpx

    latencies: list[float] = []
    errors = 0
    sent = 0
    stop_at = time.perf_counter() + seconds

    async def worker(client: httpx.AsyncClient, offset: int) -> None:
        nonlocal errors, sent
        turn = offset
        while time.perf_counter() < stop_at and sent < max_requests:
            sent += 1
            body = payloads[turn % len(payloads)]
            turn += concurrency
            started = time.perf_counter()
            try:
                if make_request == "hex":
                    response = await client.post(
                        "/v1/search", content=body, headers={"Content-Type": "application/json"}
                    )
                else:
                    response = await client.post(
                        "/v1/search", files={"file": ("q.jpg", body)}, data={"max_distance": "31"}
                    )
                if response.status_code != 200:
                    errors += 1
            except httpx.HTTPError:
                errors += 1
            latencies.append(time.perf_counter() - started)

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:
        started = time.perf_counter()
        await asyncio.gather(*(worker(client, i) for i in range(concurrency)))
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
