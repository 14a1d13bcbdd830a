"""`Index.add_words` throughput: N photo-like images added in batches of B, per batch, on SQLite
and chDB, for one or more checkouts of lookalike measured in the same window.

    python bench/bulk_add.py --photos ../shared/photos --items 1000000 --batch 100000 \
        --src /work/main/src --src src --repeat 3

Images and their hashes are those of `bench/scale.py` (`lookalike.benchmarks.scale`: real photos'
hashes of the near-duplicate rule, synthetic images made from them with 35% of the bits
flipped); an image is one `add_words` call per hash of the rule, as `bench/scale.py` adds them,
and building the hashes is not timed. After the last batch the first batch is added again:
nothing changes (the idempotent path). Each (checkout, backend, round) runs in its own process
with `PYTHONPATH=<src>`, rounds interleaved; the summary gives each one's median items/s of its
first, middle and last batch and the ratio to the first `--src`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def run_one(args: argparse.Namespace) -> dict[str, Any]:
    """Add the collection in this process (lookalike from PYTHONPATH); items/s of each batch."""
    import lookalike
    from lookalike.benchmarks.scale import load_real, make_collection
    from lookalike.index.base import open_index
    from lookalike.matcher import Matcher

    rule = Matcher.preset(args.preset)
    collection = make_collection(load_real(args.photos, args.cache, rule), args.items, 60)
    rates = []
    with tempfile.TemporaryDirectory(dir=args.workdir) as folder:
        url = f"{folder}/index.db" if args.one == "sqlite" else f"chdb://{folder}/index"
        with open_index(url) as index:
            starts = list(range(0, args.items, args.batch))
            for start in [*starts, 0]:  # the first batch again at the end: nothing changes
                stop = min(args.items, start + args.batch)
                keys = collection.keys(start, stop)
                hashes = collection.hashes(start, stop, False)
                began = time.perf_counter()
                for algorithm, (words, quality) in hashes.items():
                    scores = [None if q != q else int(q) for q in quality.tolist()]
                    index.add_words(keys, algorithm, words, words.shape[1] * 64, scores)
                rates.append((stop - start) / (time.perf_counter() - began))
            count = len(index)
    return {"rates": rates[:-1], "again": rates[-1], "count": count, "module": lookalike.__file__}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--photos", type=Path, required=True)
    parser.add_argument("--cache", type=Path, default=None, help="the accuracy corpus cache")
    parser.add_argument("--items", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=100_000)
    parser.add_argument("--backends", default="sqlite,chdb")
    parser.add_argument("--preset", default="near-duplicate")
    parser.add_argument("--src", action="append", help="a checkout's src folder (repeat to compare)")
    parser.add_argument("--repeat", type=int, default=1, help="rounds, interleaved")
    parser.add_argument("--workdir", type=Path, default=None, help="where temporary indexes go")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # backend, run in this process
    args = parser.parse_args()
    if args.cache is None:
        from lookalike.cache_dir import default_cache_dir

        args.cache = default_cache_dir() / "accuracy"
    if args.one:
        print(json.dumps(run_one(args)))
        return
    sources = [str(Path(s).resolve()) for s in args.src or [str(Path(__file__).parent.parent / "src")]]
    results: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for round_number in range(args.repeat):
        for backend in args.backends.split(","):
            for source in sources:
                result = _child(args, backend, source)
                results.setdefault((backend, source), []).append(result)
                rates = ", ".join(f"{rate:,.0f}" for rate in result["rates"])
                print(
                    f"round {round_number} {backend} {source}: items/s per batch {rates};"
                    f" first batch again {result['again']:,.0f}",
                    flush=True,
                )
    summarise(results, sources)


def _child(args: argparse.Namespace, backend: str, source: str) -> dict[str, Any]:
    command = [sys.executable, __file__, "--one", backend, "--photos", str(args.photos)]
    command += ["--cache", str(args.cache), "--items", str(args.items), "--batch", str(args.batch)]
    command += ["--preset", args.preset] + (["--workdir", str(args.workdir)] if args.workdir else [])
    env = dict(os.environ, PYTHONPATH=source)
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode:
        raise SystemExit(f"{backend} {source} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    if not result["module"].startswith(source):
        raise SystemExit(f"{source}: the child imported lookalike from {result['module']}")
    return result


def summarise(results: dict[tuple[str, str], list[dict[str, Any]]], sources: list[str]) -> None:
    """Median items/s of the first, middle and last batch, the whole add, and the re-add."""
    print("\nmedians | backend | src | first batch | middle | last | whole add | again | x first src")
    for (backend, source), runs in results.items():
        batches = len(runs[0]["rates"])
        picked = [statistics.median(r["rates"][i] for r in runs) for i in (0, batches // 2, batches - 1)]
        whole = statistics.median(batches / sum(1 / rate for rate in r["rates"]) for r in runs)
        again = statistics.median(r["again"] for r in runs)
        base = results[(backend, sources[0])]
        base_whole = statistics.median(len(r["rates"]) / sum(1 / rate for rate in r["rates"]) for r in base)
        print(
            f"| {backend} | {source} | {picked[0]:,.0f} | {picked[1]:,.0f} | {picked[2]:,.0f} | {whole:,.0f}"
            f" | {again:,.0f} | {whole / base_whole:.2f} ({len(runs)} runs)"
        )


if __name__ == "__main__":
    main()
