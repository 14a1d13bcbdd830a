"""Peak memory of duplicate search on chDB: per query batch size, and `lookalike dupes --index`.

    python bench/clickhouse_memory.py --photos ../shared/photos --size 100000

Collections are those of `bench/scale.py` (real photos' hashes and variants, planted edited
copies, synthetic images from real hashes with 35% of their bits flipped). Every measurement runs
in a fresh process, so its peak resident memory (ru_maxrss) is its own:
1. `rule_pairs` with every image's variants, on chDB, at several query batch sizes (hashes added
   with `add_words`), beside SQLite at the default batch;
2. the command a user runs, `lookalike dupes --index chdb://... --json`, over an index whose
   entries carry their variants (as `index add` stores them), beside the same on SQLite, with
   the groups of both compared.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from lookalike.benchmarks.scale import Collection, load_real, make_collection
from lookalike.cache_dir import default_cache_dir
from lookalike.hash import Hash
from lookalike.index.base import IndexItem, open_index
from lookalike.matcher import Matcher

PLANTED_PHOTOS = 60
WRITE_CHUNK = 5000


def _collection(args: argparse.Namespace) -> tuple[Matcher, Collection]:
    rule = Matcher.preset(args.preset)
    real = load_real(args.photos, args.cache, rule)
    return rule, make_collection(real, args.size, PLANTED_PHOTOS)


def url_for(backend: str, folder: str) -> str:
    return f"sqlite:///{folder}/index.db" if backend == "sqlite" else f"chdb://{folder}/index"


def pairs_at_batch(args: argparse.Namespace, backend: str, batch: int) -> dict[str, Any]:
    """`rule_pairs` with variants at one query batch size (run in its own process)."""
    from lookalike.dedupe.pairs import rule_pairs

    rule, collection = _collection(args)
    with (
        tempfile.TemporaryDirectory(dir=args.workdir) as folder,
        open_index(url_for(backend, folder)) as index,
    ):
        keys = collection.keys(0, collection.size)
        for algorithm, (words, quality) in collection.hashes(0, collection.size, False).items():
            scores = [None if q != q else int(q) for q in quality]
            index.add_words(keys, algorithm, words, words.shape[1] * 64, scores)
        found = index.ids_by_key(keys)
        ids = np.array([found[k] for k in keys], dtype=np.int64)
        began = time.perf_counter()
        pairs = rule_pairs(
            index,
            rule,
            queries=collection.batches(batch, True, ids),
            queries_by_id=collection.queries_by_id(ids),
        )
        seconds = time.perf_counter() - began
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "backend": backend,
        "batch": batch,
        "seconds": seconds,
        "pairs": len(pairs.first),
        "peak_mb": peak,
    }


def fill_with_variants(args: argparse.Namespace, backend: str, folder: str) -> None:
    """An index whose entries carry their variants, as `index add` stores them."""
    _, collection = _collection(args)
    with open_index(url_for(backend, folder)) as index:
        for start in range(0, collection.size, WRITE_CHUNK):
            stop = min(collection.size, start + WRITE_CHUNK)
            per_algorithm = collection.hashes(start, stop, True)
            items = []
            for row, key in enumerate(collection.keys(start, stop)):
                hashes = {}
                for algorithm, (words, quality) in per_algorithm.items():
                    nbits = words.shape[2] * 64
                    score = None if quality[row] != quality[row] else int(quality[row])
                    variants = tuple(Hash.from_words(v, nbits) for v in words[row])
                    hashes[algorithm] = Hash(int(variants[0]), nbits, quality=score, variants=variants)
                items.append(IndexItem(key, hashes))
            index.add(items)


def cli_dupes(backend: str, folder: str, preset: str) -> dict[str, Any]:
    """`lookalike dupes --index URL --json` as a user runs it; its peak memory and groups."""
    began = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "lookalike",
            "dupes",
            "--index",
            url_for(backend, folder),
            "--preset",
            preset,
            "--json",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - began
    if done.returncode not in (0, 1):
        raise SystemExit(f"lookalike dupes failed on {backend}:\n{done.stderr[-2000:]}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    groups = sorted(
        sorted(m["key"] for m in json.loads(line)["members"]) for line in done.stdout.splitlines() if line
    )
    return {"backend": backend, "seconds": seconds, "peak_mb": peak, "groups": groups}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--photos", type=Path, required=True)
    parser.add_argument("--cache", type=Path, default=default_cache_dir() / "accuracy")
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--batches", default="250,1000,2000,4000")
    parser.add_argument("--preset", default="near-duplicate")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--one", help=argparse.SUPPRESS)  # a job run in a fresh process
    args = parser.parse_args()
    if args.one:
        kind, backend, value = args.one.split(":")
        if kind == "pairs":
            print(json.dumps(pairs_at_batch(args, backend, int(value))))
        elif kind == "fill":
            fill_with_variants(args, backend, value)
        else:
            print(json.dumps(cli_dupes(backend, value, args.preset)))
        return
    passed = ["--photos", str(args.photos), "--cache", str(args.cache), "--size", str(args.size)]
    passed += ["--preset", args.preset] + (["--workdir", str(args.workdir)] if args.workdir else [])

    def fresh(job: str) -> dict[str, Any] | None:
        done = subprocess.run(
            [sys.executable, __file__, "--one", job, *passed], capture_output=True, text=True
        )
        if done.returncode != 0:
            raise SystemExit(f"{job} failed:\n{done.stderr[-2000:]}")
        lines = done.stdout.strip().splitlines()
        return json.loads(lines[-1]) if lines else None

    print(f"duplicate search with variants, {args.size:,} images, preset {args.preset}:")
    for backend, batch in [("sqlite", 2000)] + [("chdb", int(b)) for b in args.batches.split(",")]:
        r = fresh(f"pairs:{backend}:{batch}")
        assert r is not None
        print(
            f"  {backend:6} batch {batch:5,}: {r['seconds']:7.1f} s, {r['pairs']:,} pairs,"
            f" peak {r['peak_mb']:,.0f} MB"
        )
        sys.stdout.flush()
    cli = {}
    for backend in ("sqlite", "chdb"):
        with tempfile.TemporaryDirectory(dir=args.workdir) as folder:
            began = time.perf_counter()
            fresh(f"fill:{backend}:{folder}")
            filled = time.perf_counter() - began
            cli[backend] = fresh(f"cli:{backend}:{folder}")
            r = cli[backend]
            assert r is not None
            print(
                f"  lookalike dupes --index {backend}: {r['seconds']:.1f} s, {len(r['groups']):,} groups,"
                f" peak {r['peak_mb']:,.0f} MB (index with variants filled in {filled:.0f} s)"
            )
            sys.stdout.flush()
    same = cli["sqlite"]["groups"] == cli["chdb"]["groups"]  # type: ignore[index]
    print(f"  the same groups on SQLite and chDB: {same}")


if __name__ == "__main__":
    main()
