"""Exact Hamming search: lookalike's HashStore against NumPy brute force and FAISS, same run.

    python bench/search.py               # full size: 10M 64-bit, 1M 256-bit, 1M all-pairs
    python bench/search.py --scale 0.01  # a quick check at 1% of the sizes

Each measurement is the median over interleaved rounds (ours, then each peer, per round). FAISS
(`pip install 'lookalike[faiss]'`) uses its default threads (both cores here); ours and NumPy use
one. FAISS ranges are strict (`<`), so it is asked for r+1. Random hashes are the worst case for
multi-index hashing; `--clustered` adds a run on photo-like clustered hashes.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from lookalike.search import HashStore

Row = tuple[str, str, str, str]
ROWS: list[Row] = []


def report(test: str, ours: str, peer: str, verdict: str) -> None:
    ROWS.append((test, ours, peer, verdict))
    print(f"{test:58s} | {ours:22s} | {peer:40s} | {verdict}", flush=True)


def met(ok: bool) -> str:
    return "met" if ok else "MISSED"


def median_time(fn: Callable[[], Any], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def random_words(count: int, word_count: int, rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, 2**64 - 1, size=(count, word_count), dtype=np.uint64, endpoint=True)


def plant(
    words: np.ndarray, queries: np.ndarray, per_query: int, max_flips: int, rng: np.random.Generator
) -> dict[int, set[int]]:
    """Overwrite random rows with copies of each query with 1..max_flips bits flipped."""
    nbits = 64 * words.shape[1]
    rows = rng.choice(len(words), size=len(queries) * per_query, replace=False)
    planted: dict[int, set[int]] = {}
    for q in range(len(queries)):
        for j in range(per_query):
            row = int(rows[q * per_query + j])
            copy = queries[q].copy()
            for bit in rng.choice(nbits, size=int(rng.integers(1, max_flips + 1)), replace=False).tolist():
                copy[bit // 64] ^= np.uint64(1) << np.uint64(bit % 64)
            words[row] = copy
            planted.setdefault(q, set()).add(row)
    return planted


def faiss_codes(words: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(words).view(np.uint8).reshape(len(words), -1)


def load_faiss() -> Any:
    try:
        import faiss  # type: ignore[import-not-found]
    except ImportError:
        return None
    return faiss


def numpy_range(words: np.ndarray, query: np.ndarray, radius: int) -> np.ndarray:
    """The peer brute force: XOR + popcount over every row, then the rows within `radius`."""
    distances = (
        np.bitwise_count(words ^ query).sum(axis=1)
        if words.shape[1] > 1
        else np.bitwise_count(words[:, 0] ^ query[0])
    )
    return np.flatnonzero(distances <= radius)


def numpy_top_k(words: np.ndarray, query: np.ndarray, k: int) -> np.ndarray:
    distances = np.bitwise_count(words[:, 0] ^ query[0])
    return np.argpartition(distances, k)[:k]


def bench_64(count: int, rounds: int, faiss: Any, query_count: int = 1000, radius: int = 8) -> HashStore:
    rng = np.random.default_rng(64)
    print(
        f"\n## {count:,} random 64-bit hashes, {query_count} queries"
        f" with 5 planted copies each (<= {radius} bits)"
    )
    words = random_words(count, 1, rng)
    queries = random_words(query_count, 1, rng)
    planted = plant(words, queries, 5, radius, rng)
    start = time.perf_counter()
    store = HashStore(64)
    store.add(np.arange(count), words)
    store.compact()
    build = time.perf_counter() - start
    report(f"build (64-bit, n={count:,})", f"{build:.1f} s", "", "")

    # Recall of planted matches, and exactness against the brute force, on every query.
    hits = store.range_search(queries, radius)
    found = hits.split(query_count)
    recall = sum(len(planted[q] & set(found[q][0].tolist())) for q in range(query_count)) / (5 * query_count)
    sample_exact = all(
        set(found[q][0].tolist()) == set(numpy_range(words, queries[q], radius).tolist())
        for q in range(0, query_count, 50)
    )
    report(
        f"recall of planted matches, r={radius}",
        f"{recall:.1%}",
        f"exact vs NumPy on 20 queries: {sample_exact}",
        "",
    )

    faiss_flat = faiss_mh = None
    if faiss is not None:
        faiss_flat = faiss.IndexBinaryFlat(64)
        faiss_flat.add(faiss_codes(words))
        nhash = len(store._table.chunks) if store._table is not None else 3
        faiss_mh = faiss.IndexBinaryMultiHash(64, nhash, 64 // nhash)
        faiss_mh.nflip = radius // nhash
        start = time.perf_counter()
        faiss_mh.add(faiss_codes(words))
        report(
            f"build FAISS IndexBinaryMultiHash({nhash}x{64 // nhash} bits)",
            "",
            f"{time.perf_counter() - start:.1f} s",
            "",
        )

    # One range query at a time.
    single = queries[:200]
    ours_t, numpy_t, flat_t, mh_t = [], [], [], []
    mh_recall = 0.0
    for _ in range(rounds):
        for q in range(len(single)):
            one = single[q : q + 1]
            start = time.perf_counter()
            store.range_search(one, radius)
            ours_t.append(time.perf_counter() - start)
        for q in range(0, len(single), 10):
            start = time.perf_counter()
            numpy_range(words, single[q], radius)
            numpy_t.append(time.perf_counter() - start)
        if faiss_flat is not None:
            for q in range(0, len(single), 10):
                start = time.perf_counter()
                faiss_flat.range_search(faiss_codes(single[q : q + 1]), radius + 1)
                flat_t.append(time.perf_counter() - start)
            got = 0
            for q in range(len(single)):
                start = time.perf_counter()
                _, _, ids = faiss_mh.range_search(faiss_codes(single[q : q + 1]), radius + 1)
                mh_t.append(time.perf_counter() - start)
                got += len(planted[q] & set(ids.tolist()))
            mh_recall = got / (5 * len(single))
    ours_ms = statistics.median(ours_t) * 1e3
    report(
        f"one range query r={radius} over {count:,} (median)",
        f"{ours_ms:.3f} ms",
        f"NumPy {statistics.median(numpy_t) * 1e3:.1f} ms",
        f"{statistics.median(numpy_t) * 1e3 / ours_ms:.0f}x faster; target <= 1 ms: {met(ours_ms <= 1)}",
    )
    if faiss_flat is not None:
        report(
            "",
            "",
            f"FAISS Flat {statistics.median(flat_t) * 1e3:.1f} ms",
            f"{statistics.median(flat_t) * 1e3 / ours_ms:.0f}x faster",
        )
        report(
            "",
            "",
            f"FAISS MultiHash {statistics.median(mh_t) * 1e3:.3f} ms (recall {mh_recall:.0%})",
            f"{statistics.median(mh_t) * 1e3 / ours_ms:.1f}x",
        )

    # Exact top-10.
    ours_t, numpy_t, flat_t = [], [], []
    for _ in range(rounds):
        for q in range(0, 100, 5):
            one = queries[q : q + 1]
            start = time.perf_counter()
            store.knn(one, 10)
            ours_t.append(time.perf_counter() - start)
            start = time.perf_counter()
            numpy_top_k(words, one[0], 10)
            numpy_t.append(time.perf_counter() - start)
            if faiss_flat is not None:
                start = time.perf_counter()
                faiss_flat.search(faiss_codes(one), 10)
                flat_t.append(time.perf_counter() - start)
    ours_ms = statistics.median(ours_t) * 1e3
    numpy_ms = statistics.median(numpy_t) * 1e3
    peer = f"NumPy {numpy_ms:.1f} ms" + (
        f", FAISS Flat {statistics.median(flat_t) * 1e3:.1f} ms" if flat_t else ""
    )
    report(
        f"top-10 over {count:,} (median)",
        f"{ours_ms:.2f} ms",
        peer,
        f"{numpy_ms / ours_ms:.1f}x NumPy; target no slower than NumPy: {met(ours_ms <= numpy_ms)}",
    )

    # A batch of 1,000 range queries.
    ours_batch = median_time(lambda: store.range_search(queries, radius), max(1, rounds // 2))
    peer_text, verdict = "", ""
    if faiss_flat is not None:
        subset = max(10, min(query_count, int(1000 * min(1.0, 1e6 / count))))
        start = time.perf_counter()
        faiss_flat.range_search(faiss_codes(queries[:subset]), radius + 1)
        flat_batch = (time.perf_counter() - start) * query_count / subset
        start = time.perf_counter()
        faiss_mh.range_search(faiss_codes(queries), radius + 1)
        mh_batch = time.perf_counter() - start
        note = "" if subset == query_count else f" ({subset} run, scaled)"
        peer_text = f"FAISS Flat {flat_batch:.2f} s{note}; MultiHash {mh_batch * 1e3:.0f} ms"
        verdict = f"{flat_batch / ours_batch:.0f}x faster than Flat; target: {met(ours_batch < flat_batch)}"
    report(
        f"batch of {query_count} range queries r={radius}", f"{ours_batch * 1e3:.0f} ms", peer_text, verdict
    )

    raw = words.nbytes
    ratio = store.nbytes() / raw
    report(
        "memory of the search structure",
        f"{store.nbytes() / 2**20:.0f} MiB",
        f"raw hashes {raw / 2**20:.0f} MiB",
        f"{ratio:.2f}x raw; target <= 3x: {'met' if ratio <= 3 else 'MISSED'}",
    )
    del faiss_flat, faiss_mh
    gc.collect()
    return store


def bench_256(count: int, rounds: int, faiss: Any, radius: int = 31) -> None:
    rng = np.random.default_rng(256)
    print(f"\n## {count:,} random 256-bit (PDQ-sized) hashes, range r={radius}")
    words = random_words(count, 4, rng)
    queries = random_words(200, 4, rng)
    planted = plant(words, queries, 3, radius, rng)
    store = HashStore(256)
    store.add(np.arange(count), words)
    store.compact()
    hits = store.range_search(queries, radius).split(len(queries))
    recall = sum(len(planted[q] & set(hits[q][0].tolist())) for q in range(len(queries))) / (3 * len(queries))
    flat = None
    if faiss is not None:
        flat = faiss.IndexBinaryFlat(256)
        flat.add(faiss_codes(words))
    ours_t, numpy_t, flat_t = [], [], []
    for _ in range(rounds):
        for q in range(0, 200, 4):
            one = queries[q : q + 1]
            start = time.perf_counter()
            store.range_search(one, radius)
            ours_t.append(time.perf_counter() - start)
            start = time.perf_counter()
            numpy_range(words, one[0], radius)
            numpy_t.append(time.perf_counter() - start)
            if flat is not None:
                start = time.perf_counter()
                flat.range_search(faiss_codes(one), radius + 1)
                flat_t.append(time.perf_counter() - start)
    ours_ms = statistics.median(ours_t) * 1e3
    peer = f"NumPy {statistics.median(numpy_t) * 1e3:.1f} ms"
    verdict = f"recall {recall:.0%}"
    if flat_t:
        flat_ms = statistics.median(flat_t) * 1e3
        peer += f", FAISS Flat {flat_ms:.2f} ms"
        verdict += (
            f"; {flat_ms / ours_ms:.1f}x Flat; target no slower: {'met' if ours_ms <= flat_ms else 'MISSED'}"
        )
    report(f"one 256-bit range query r={radius} over {count:,}", f"{ours_ms:.3f} ms", peer, verdict)
    report(
        "memory of the 256-bit structure",
        f"{store.nbytes() / 2**20:.0f} MiB",
        f"raw {words.nbytes / 2**20:.0f} MiB",
        f"{store.nbytes() / words.nbytes:.2f}x raw",
    )


def clustered_words(count: int, rng: np.random.Generator) -> np.ndarray:
    """Photo-like hashes: many images near a few thousand 'scenes' (bursts, edits, re-encodes),
    with biased bits as real pHashes have (the low-frequency bits are set far more often)."""
    scenes = max(10, count // 50)
    bias = np.linspace(0.8, 0.35, 64)  # per-bit probability of 1, high for the first (low-frequency) bits
    centres = (rng.random((scenes, 64)) < bias).astype(np.uint64)
    members = centres[rng.integers(0, scenes, size=count)]
    flips = (rng.random((count, 64)) < rng.uniform(0.0, 0.12, size=(count, 1))).astype(np.uint64)
    bits = members ^ flips
    weights = np.uint64(1) << np.arange(63, -1, -1, dtype=np.uint64)
    return (bits * weights).sum(axis=1, dtype=np.uint64).reshape(-1, 1)


def bench_pairs(count: int, faiss: Any, clustered: bool) -> None:
    rng = np.random.default_rng(7)
    kind = "photo-like clustered" if clustered else "random"
    print(f"\n## all-pairs grouping of {count:,} {kind} 64-bit hashes")
    words = clustered_words(count, rng) if clustered else random_words(count, 1, rng)
    if not clustered:
        plant(words, words[rng.choice(count, size=count // 100, replace=False)].copy(), 1, 8, rng)
    for radius, target in ((4, 30.0), (8, 300.0)):
        store = HashStore(64)
        start = time.perf_counter()
        store.add(np.arange(count), words)
        first, _, _ = store.pairs(radius)
        ours = time.perf_counter() - start
        peer, verdict = "", f"target <= {target:.0f} s: {'met' if ours <= target else 'MISSED'}"
        if faiss is not None and not clustered:
            flat = faiss.IndexBinaryFlat(64)
            flat.add(faiss_codes(words))
            subset = min(count, 2000)
            start = time.perf_counter()
            flat.range_search(faiss_codes(words[:subset]), radius + 1)
            flat_total = (time.perf_counter() - start) * count / subset
            nhash = 3
            mh = faiss.IndexBinaryMultiHash(64, nhash, 64 // nhash)
            mh.nflip = radius // nhash
            start = time.perf_counter()
            mh.add(faiss_codes(words))
            mh.range_search(faiss_codes(words), radius + 1)
            mh_total = time.perf_counter() - start
            peer = f"FAISS Flat ~{flat_total:.0f} s (scaled from {subset}); MultiHash {mh_total:.1f} s"
            verdict += f"; {min(flat_total, mh_total) / ours:.1f}x faster than the faster FAISS"
        report(
            f"all-pairs r={radius}, {count:,} {kind} (build included)",
            f"{ours:.1f} s, {len(first):,} pairs",
            peer,
            verdict,
        )
        del store
        gc.collect()


def bench_open(count: int, store_words: np.ndarray | None) -> None:
    """Time a fresh process opening an index of `count` hashes and answering its first query."""
    from lookalike.index.sqlite import SQLiteIndex

    folder = Path(os.environ.get("LOOKALIKE_BENCH_DIR", tempfile.gettempdir())) / "lookalike-bench"
    folder.mkdir(exist_ok=True)
    db = folder / f"open-{count}.db"
    rng = np.random.default_rng(99)
    words = random_words(count, 1, rng)
    if not db.exists():
        print(f"building {db} (one-off: {count:,} rows through add_words) ...", flush=True)
        start = time.perf_counter()
        with SQLiteIndex.open(str(db) + ".tmp") as index:
            keys = [f"img{i:09d}" for i in range(count)]
            index.add_words(keys, "phash", words, 64)
            index.search(  # builds the in-memory structure; close() snapshots it
                __import__("lookalike").Hash(int(words[0, 0]), 64), "phash", 1
            )
        for suffix in ("", "-wal", "-shm"):
            if Path(f"{db}.tmp{suffix}").exists():
                os.replace(f"{db}.tmp{suffix}", f"{db}{suffix}")
        os.replace(f"{db}.tmp.search", f"{db}.search")
        print(f"built in {time.perf_counter() - start:.0f} s", flush=True)
    script = (
        "import time, sys; t0 = time.perf_counter()\n"
        "import lookalike; from lookalike.index import open_index\n"
        "t1 = time.perf_counter()\n"
        "index = open_index(sys.argv[1])\n"
        "found = index.range_search(lookalike.Hash(int(sys.argv[2]), 64), 'phash', 8)\n"
        "t2 = time.perf_counter()\n"
        "print(t1 - t0, t2 - t1, len(found))\n"
    )
    times = []
    for _ in range(3):
        out = subprocess.run(
            [sys.executable, "-c", script, str(db), str(int(words[123, 0]))],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        times.append((float(out[0]), float(out[1]), int(out[2])))
    imports = statistics.median(t[0] for t in times)
    first = statistics.median(t[1] for t in times)
    report(
        f"open a {count:,}-hash index + first query (fresh process)",
        f"{first:.2f} s",
        f"(+ {imports:.2f} s importing lookalike)",
        f"target <= 5 s: {'met' if first + imports <= 5 else 'MISSED'}; found {times[0][2]}",
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the full sizes (10M, 1M, 1M)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-faiss", action="store_true")
    parser.add_argument("--clustered", action="store_true", help="also group photo-like clustered hashes")
    parser.add_argument("--skip", default="", help="comma-separated sections to skip: 64,256,pairs,open")
    args = parser.parse_args()
    faiss = None if args.no_faiss else load_faiss()
    if faiss is None:
        print("FAISS not installed (pip install 'lookalike[faiss]'): comparing with NumPy only")
    skip = set(args.skip.split(","))
    n64, n256, npairs = int(10_000_000 * args.scale), int(1_000_000 * args.scale), int(1_000_000 * args.scale)
    if "64" not in skip:
        bench_64(n64, args.rounds, faiss)
        gc.collect()
    if "256" not in skip:
        bench_256(n256, args.rounds, faiss)
        gc.collect()
    if "pairs" not in skip:
        bench_pairs(npairs, faiss, clustered=False)
        if args.clustered:
            bench_pairs(npairs, None, clustered=True)
    if "open" not in skip:
        bench_open(n64, None)
    print("\n| test | lookalike | peer | verdict |\n|---|---|---|---|")
    for row in ROWS:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
