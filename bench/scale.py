"""The default matcher at collection scale: bulk add, duplicate search and match, SQLite and chDB.

    python bench/scale.py --photos ../shared/photos --sizes 10000,100000,1000000 --backends sqlite,chdb
    python bench/scale.py --photos ../shared/photos --sizes 10000000 --backends sqlite --match-only

Collections are photo-like (`lookalike.benchmarks.scale`): real photos of the accuracy corpus with
their real edited copies planted among synthetic images made from real photos' hashes with 35%
of their bits flipped. Each (backend, size) runs in its own process so peak memory is its own.
Per run: bulk add (items/s, each batch), the duplicate search of every image with its variants
(hashing excluded: the variants are given), how many of the planted pairs it finds against the
exact plan (range searches at the rule's radii) over the planted images alone, single `match`
queries (p50, p95), the first query after reopening the index, and peak resident memory.
Peers, on the same collection, each in its own process (`lookalike.benchmarks.scale_peers`):
every pair within a radius on one hash, the job our duplicate search does on several hashes with
variants. On the rule's first hash (equalised pHash, 256 bits, at the rule's radius, 56): FAISS
IndexBinaryFlat, IndexBinaryIVF and IndexBinaryMultiHash, and pybktree; FAISS IndexBinaryFlat
queried with each image's 8 dihedral variants of that hash (the candidate stage's job); on a 64-bit pHash at
imagededup's default radius (10), the approach of imagededup and czkawka: pybktree and cppbktree.
Recall is counted the same way for everyone: the planted pairs (two images of one photo) found.
`--repeat` runs everything several times, interleaved; `--report docs` writes docs/scale.md,
docs/scale.json and docs/scale.png from the medians (`lookalike.benchmarks.scale_report`).

    python bench/scale.py --photos ../shared/photos --sizes 10000,100000 --repeat 3 \
        --out /tmp/scale.jsonl --report docs
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from lookalike.benchmarks.scale import Collection, load_real, load_real_words, make_collection
from lookalike.benchmarks.scale_peers import faiss_flat_variants, peers, run_peer
from lookalike.cache_dir import default_cache_dir
from lookalike.dedupe.pairs import rule_pairs
from lookalike.index.base import open_index
from lookalike.matcher import Matcher

PLANTED_PHOTOS = 60
ADD_BATCH = 100_000
QUERY_BATCH = 2000
MATCH_QUERIES = 200
# (peer, hash, radius): the rule's first hash at its radius, and a 64-bit pHash at imagededup's
# default radius (the BK-tree duplicate finders' setup)
PEER_JOBS = {
    "faiss-flat": ("faiss-flat", "phash_eq", 56),
    "faiss-flat-variants": ("faiss-flat-variants", "phash_eq", 56),
    "faiss-ivf": ("faiss-ivf", "phash_eq", 56),
    "faiss-multihash": ("faiss-multihash", "phash_eq", 56),
    "pybktree": ("pybktree", "phash_eq", 56),
    "pybktree-phash64": ("pybktree", "phash", 10),
    "cppbktree-phash64": ("cppbktree", "phash", 10),
}


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def build(index: Any, collection: Collection, log: list[str]) -> tuple[list[float], float]:
    """Bulk add in batches of ADD_BATCH through `add_words` (one call per algorithm and batch,
    so every algorithm after the first goes to keys already stored); items per second of each
    batch, and of adding the first batch again (nothing changes: the idempotent path)."""
    rates = []
    for start in range(0, collection.size, ADD_BATCH):
        stop = min(collection.size, start + ADD_BATCH)
        rates.append(_add_batch(index, collection, start, stop))
        log.append(f"  add {start:,}-{stop:,}: {rates[-1]:,.0f} items/s")
    again = _add_batch(index, collection, 0, min(collection.size, ADD_BATCH))
    log.append(f"  add 0-{min(collection.size, ADD_BATCH):,} again (unchanged): {again:,.0f} items/s")
    return rates, again


def _add_batch(index: Any, collection: Collection, start: int, stop: int) -> float:
    keys = collection.keys(start, stop)
    began = time.perf_counter()
    for algorithm, (words, quality) in collection.hashes(start, stop, False).items():
        scores = [None if q != q else int(q) for q in quality.tolist()]
        index.add_words(keys, algorithm, words, words.shape[1] * 64, scores)
    return (stop - start) / (time.perf_counter() - began)


def run_one(args: argparse.Namespace, backend: str, size: int) -> dict[str, Any]:
    rule = Matcher.preset(args.preset)
    real = load_real(args.photos, args.cache, rule)
    collection = make_collection(real, size, PLANTED_PHOTOS)
    result: dict[str, Any] = {"backend": backend, "size": size, "planted": collection.planted}
    log: list[str] = []
    with tempfile.TemporaryDirectory(dir=args.workdir) as folder:
        url = f"{folder}/index.db" if backend == "sqlite" else f"chdb://{folder}/index"
        index = open_index(url)
        rates, again = build(index, collection, log)
        sizes = [min(ADD_BATCH, size - start) for start in range(0, size, ADD_BATCH)]
        result["add_seconds"] = sum(n / rate for n, rate in zip(sizes, rates, strict=True))
        result["add_rates"] = rates
        result["readd_rate"] = again
        began = time.perf_counter()  # what a bulk load ends with: `lookalike index compact`
        index.compact()
        result["compact_seconds"] = time.perf_counter() - began
        keys = collection.keys(0, size)
        found_ids = index.ids_by_key(keys)
        ids = np.array([found_ids[k] for k in keys], dtype=np.int64)
        if not args.match_only:
            began = time.perf_counter()
            pairs = rule_pairs(
                index,
                rule,
                queries=collection.batches(QUERY_BATCH, True, ids),
                queries_by_id=collection.queries_by_id(ids),
            )
            result["dedupe_seconds"] = time.perf_counter() - began
            row_of = {int(v): i for i, v in enumerate(ids.tolist())}
            found = {
                (min(row_of[a], row_of[b]), max(row_of[a], row_of[b]))
                for a, b in zip(pairs.first.tolist(), pairs.second.tolist(), strict=True)
            }
            exact = exact_planted_pairs(args, collection, rule)
            result["pairs"] = len(found)
            truth = collection.planted_pairs()
            result["truth_pairs"] = len(truth)
            result["truth_found"] = len(found & truth)
            result["exact_planted_pairs"] = len(exact)
            result["planted_found"] = len(found & exact)
            result["outside_planted"] = len({p for p in found if p[1] >= collection.planted})
        # single queries: planted images, each with its variants
        queries = list(itertools.islice(collection.batches(1, True), min(MATCH_QUERIES, collection.planted)))
        from lookalike.candidates.stage import match_batch

        times = []
        for batch in queries:
            began = time.perf_counter()
            match_batch(index, batch, rule)
            times.append(time.perf_counter() - began)
        result["match_p50_ms"] = 1000 * statistics.median(times)
        result["match_p95_ms"] = 1000 * sorted(times)[int(0.95 * (len(times) - 1))]
        index.close()
        # what the close wrote (the search structures' snapshots) reaches the disk first: the
        # first query times an index being opened, not the write-back of the one just closed
        os.sync()
        began = time.perf_counter()
        reopened = open_index(url)
        result["open_seconds"] = time.perf_counter() - began
        match_batch(reopened, queries[0], rule)
        result["first_query_seconds"] = time.perf_counter() - began
        memory = getattr(reopened, "search_memory", lambda: None)()
        result["search_memory_mb"] = None if memory is None else memory / 2**20
        reopened.close()
    result["peak_mb"] = peak_mb()
    result["log"] = log
    return result


def run_peer_job(args: argparse.Namespace, job: str, size: int) -> dict[str, Any]:
    """A peer's duplicate search over the collection of `size` images, on its one hash."""
    name, algorithm, radius = PEER_JOBS[job]
    rule = Matcher.preset(args.preset)
    real = load_real(args.photos, args.cache, rule)
    collection = make_collection(real, size, PLANTED_PHOTOS)
    if algorithm in real.algorithms:
        salt, real_words = real.algorithms.index(algorithm), real.words[algorithm]
    else:  # a hash the rule does not read: masks of its own
        salt, real_words = len(real.algorithms), load_real_words(args.photos, args.cache, algorithm)
    words = collection.words_of(real_words, salt, 0, size)
    baseline = peak_mb()
    if name == "faiss-flat-variants":  # queried with every image's dihedral variants of the hash
        variants = collection.words_of(real.variants[algorithm], salt, 0, size)
        peer = faiss_flat_variants(variants)
        run = run_peer(peer, words, radius, collection.planted, args.peer_budget, variants)
    else:
        run = run_peer(peers(radius)[name], words, radius, collection.planted, args.peer_budget)
    found = set(zip(run.first.tolist(), run.second.tolist(), strict=True))
    truth = collection.planted_pairs()
    return {
        "backend": job,
        "peer": name,
        "hash": algorithm,
        "bits": 64 * words.shape[1],
        "radius": radius,
        "size": size,
        "planted": collection.planted,
        "build_seconds": run.build_seconds,
        "search_seconds": run.search_seconds,
        "dedupe_seconds": run.seconds,
        "estimated": run.estimated,
        "rows_answered": run.rows_answered,
        "pairs": len(found),
        "beyond_radius": run.beyond_radius,
        "truth_pairs": len(truth),
        "truth_found": len(found & truth),
        "outside_planted": len({p for p in found if p[1] >= collection.planted}),
        "baseline_mb": baseline,
        "index_mb": run.index_mb,
        "peak_mb": run.peak_mb,
    }


def exact_planted_pairs(
    args: argparse.Namespace, collection: Collection, rule: Matcher
) -> set[tuple[int, int]]:
    """Pairs among the planted images that the exact plan accepts (planted images are the first
    rows; synthetic images match none of them)."""
    planted = make_collection(collection.real, collection.planted, PLANTED_PHOTOS, collection.random_seed)
    with tempfile.TemporaryDirectory(dir=args.workdir) as folder:
        index = open_index(f"{folder}/exact.db")
        build(index, planted, [])
        keys = planted.keys(0, planted.size)
        found_ids = index.ids_by_key(keys)
        ids = np.array([found_ids[k] for k in keys], dtype=np.int64)
        pairs = rule_pairs(index, rule, queries=planted.batches(QUERY_BATCH, True, ids), exact=True)
        row_of = {int(v): i for i, v in enumerate(ids.tolist())}
        index.close()
    return {
        (min(row_of[a], row_of[b]), max(row_of[a], row_of[b]))
        for a, b in zip(pairs.first.tolist(), pairs.second.tolist(), strict=True)
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--photos", type=Path, required=True)
    parser.add_argument("--cache", type=Path, default=default_cache_dir() / "accuracy")
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--backends", default="sqlite,chdb")
    parser.add_argument("--preset", default="near-duplicate")
    parser.add_argument("--match-only", action="store_true", help="skip the duplicate search")
    parser.add_argument("--workdir", type=Path, default=None, help="where temporary indexes go")
    parser.add_argument(
        "--peers",
        default=",".join(PEER_JOBS),
        help=f"peers to run beside ours ({', '.join(PEER_JOBS)}), or ''",
    )
    parser.add_argument(
        "--peer-budget",
        type=float,
        default=120.0,
        help="seconds of searching after which a peer answers a sample of the remaining images and"
        " its time is extrapolated (the planted images are always answered, so recall is exact)",
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs of everything, interleaved")
    parser.add_argument("--out", type=Path, default=None, help="append JSON results to this file")
    parser.add_argument("--report", type=Path, default=None, help="write scale.md/.json/.png here")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # backend:size, run in this process
    args = parser.parse_args()
    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)  # a named folder need not exist yet
    if args.one:
        backend, size = args.one.split(":")
        one = run_peer_job if backend in PEER_JOBS else run_one
        print(json.dumps(one(args, backend, int(size))))
        return
    jobs = [b for b in args.backends.split(",") if b] + [p for p in args.peers.split(",") if p]
    results: list[dict[str, Any]] = []
    for round_number in range(args.repeat):
        for size in [int(s) for s in args.sizes.split(",")]:
            for backend in jobs:
                command = [sys.executable, __file__, "--one", f"{backend}:{size}", *_passed(args)]
                done = subprocess.run(command, capture_output=True, text=True, env=os.environ)
                if done.returncode != 0:
                    print(f"{backend} {size:,}: failed\n{done.stderr[-2000:]}")
                    continue
                result = json.loads(done.stdout.strip().splitlines()[-1])
                result["round"] = round_number
                results.append(result)
                report(result, results)
                if args.out:
                    with open(args.out, "a") as handle:
                        handle.write(json.dumps(result) + "\n")
    if args.report:
        from lookalike.benchmarks.scale_report import write_report

        command_line = "python bench/scale.py " + " ".join(sys.argv[1:])
        write_report(results, args.report, command_line)


def _passed(args: argparse.Namespace) -> list[str]:
    passed = ["--photos", str(args.photos), "--cache", str(args.cache), "--preset", args.preset]
    passed += ["--peer-budget", str(args.peer_budget)]
    if args.match_only:
        passed.append("--match-only")
    if args.workdir:
        passed += ["--workdir", str(args.workdir)]
    return passed


def report(r: dict[str, Any], results: list[dict[str, Any]]) -> None:
    if "peer" in r:
        report_peer(r, results)
        return
    print(f"{r['backend']} {r['size']:,} images ({r['planted']:,} planted):")
    rates = r["add_rates"]
    print(f"  add: {r['add_seconds']:.1f} s, {min(rates):,.0f}-{max(rates):,.0f} items/s per batch")
    print("  add, items/s of each batch: " + ", ".join(f"{rate:,.0f}" for rate in rates))
    if "readd_rate" in r:
        print(f"  the first batch added again (unchanged): {r['readd_rate']:,.0f} items/s")
    if r.get("compact_seconds") is not None:
        print(f"  compact after the bulk add (parts merged): {r['compact_seconds']:.1f} s")
    if "dedupe_seconds" in r:
        exact = max(r["exact_planted_pairs"], 1)
        print(
            f"  same-photo planted pairs found: {r['truth_found']:,} of {r['truth_pairs']:,}"
            f" ({100 * r['truth_found'] / max(r['truth_pairs'], 1):.1f}%)"
        )
        print(
            f"  duplicate search: {r['dedupe_seconds']:.1f} s; planted pairs {r['planted_found']:,} of"
            f" {r['exact_planted_pairs']:,} the exact plan finds ({100 * r['planted_found'] / exact:.2f}%);"
            f" pairs outside the planted images: {r['outside_planted']}"
        )
    print(
        f"  match: p50 {r['match_p50_ms']:.1f} ms, p95 {r['match_p95_ms']:.1f} ms;"
        f" first query after reopening {r['first_query_seconds']:.2f} s"
        f" (opening {r.get('open_seconds', 0):.2f} s of it)"
    )
    memory = r["search_memory_mb"]
    print(
        f"  peak memory {r['peak_mb']:,.0f} MB" + (f", search structures {memory:,.0f} MB" if memory else "")
    )
    sys.stdout.flush()


def report_peer(r: dict[str, Any], results: list[dict[str, Any]]) -> None:
    """A peer's line, with its time over ours (SQLite, same size and round) when ours ran."""
    ours = [
        o
        for o in results
        if o.get("backend") == "sqlite" and o["size"] == r["size"] and o.get("round") == r.get("round")
    ]
    ratio = ""
    if ours and ours[0].get("dedupe_seconds"):
        ratio = f", {r['dedupe_seconds'] / ours[0]['dedupe_seconds']:.1f}x ours (SQLite)"
    estimated = f" (estimated from {r['rows_answered']:,} images)" if r["estimated"] else ""
    print(
        f"{r['backend']} {r['size']:,} images, {r['hash']} ({r['bits']} bits) <= {r['radius']}:"
        f" {r['dedupe_seconds']:.1f} s{estimated}{ratio}; planted pairs found {r['truth_found']:,} of"
        f" {r['truth_pairs']:,} ({100 * r['truth_found'] / max(r['truth_pairs'], 1):.1f}%);"
        f" pairs outside the planted images {r['outside_planted']}; peak memory {r['peak_mb']:,.0f} MB"
    )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
