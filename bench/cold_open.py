"""The first `match` after opening a large index from a cold disk: time, bytes read, page faults.

    python bench/cold_open.py --photos ../shared/photos --size 10000000 --dir /tmp/cold-10m \
        --src /tmp/base/src --src src --repeat 3

Builds the `bench/scale.py` collection of `--size` photo-like images into `--dir` once (bulk add,
the search structures' snapshots; kept for later runs), then, for each `--src` tree in turn and
`--repeat` rounds interleaved, in a fresh process: drops the page cache (root only: it writes
/proc/sys/vm/drop_caches), opens the index and times its first `match` of a planted image with
its variants. The code the match runs is loaded and exercised on a small index first, so the
time is the index's pages, not the interpreter's. Prints each run and the medians per tree.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import pickle
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PRIMER_SIZE = 10_000
QUERIES = 20


def build(photos: Path, size: int, folder: Path) -> None:
    """The scale benchmark's collection of `size` images, added and snapshotted in `folder`,
    with some planted queries beside it."""
    sys.path.insert(0, str(HERE))
    import scale
    from lookalike.benchmarks.scale import load_real, make_collection
    from lookalike.cache_dir import default_cache_dir
    from lookalike.candidates.stage import match_batch
    from lookalike.index.base import open_index
    from lookalike.matcher import Matcher

    folder.mkdir(parents=True, exist_ok=True)
    rule = Matcher.preset("near-duplicate")
    real = load_real(photos, default_cache_dir() / "accuracy", rule)
    collection = make_collection(real, size, scale.PLANTED_PHOTOS)
    index = open_index(str(folder / "index.db"))
    log: list[str] = []
    scale.build(index, collection, log)
    queries = list(itertools.islice(collection.batches(1, True), QUERIES))
    match_batch(index, queries[0], rule)  # builds the search structures
    index.close()  # writes their snapshots
    with open(folder / "queries.pkl", "wb") as handle:
        pickle.dump(queries, handle)
    print(f"built {size:,} images in {folder}")


def measure(folder: Path, primer: Path) -> dict[str, Any]:
    """One cold open and first match (run in a fresh process by `main`)."""
    from lookalike.candidates.stage import match_batch
    from lookalike.index.base import open_index
    from lookalike.matcher import Matcher

    rule = Matcher.preset("near-duplicate")
    with open(primer / "queries.pkl", "rb") as handle:
        primed = open_index(str(primer / "index.db"))
        match_batch(primed, pickle.load(handle)[0], rule)
        primed.close()
    with open(folder / "queries.pkl", "rb") as handle:
        query = pickle.load(handle)[0]
    os.sync()
    Path("/proc/sys/vm/drop_caches").write_text("3\n")
    read_before, faults_before = _read_bytes(), _major_faults()
    began = time.perf_counter()
    index = open_index(str(folder / "index.db"))
    opened = time.perf_counter() - began
    match_batch(index, query, rule)
    first = time.perf_counter() - began
    return {
        "open_seconds": opened,
        "first_query_seconds": first,
        "read_mb": (_read_bytes() - read_before) / 2**20,
        "major_faults": _major_faults() - faults_before,
    }


def _read_bytes() -> int:
    fields = dict(line.split(": ") for line in Path("/proc/self/io").read_text().splitlines())
    return int(fields["read_bytes"])


def _major_faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_majflt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--photos", type=Path, required=True)
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--dir", type=Path, required=True, help="where the index is built and kept")
    parser.add_argument("--src", action="append", default=[], help="lookalike source trees to compare")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--measure", nargs=2, help=argparse.SUPPRESS)  # folder primer, here
    parser.add_argument("--build", nargs=2, help=argparse.SUPPRESS)  # size folder, here
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(Path(args.measure[0]), Path(args.measure[1]))))
        return
    if args.build:
        build(args.photos, int(args.build[0]), Path(args.build[1]))
        return
    primer = args.dir.with_name(args.dir.name + "-primer")
    for folder, size in ((args.dir, args.size), (primer, PRIMER_SIZE)):
        if not (folder / "queries.pkl").exists():  # built by the code first named
            env = dict(os.environ, PYTHONPATH=args.src[-1]) if args.src else dict(os.environ)
            command = [sys.executable, __file__, "--photos", str(args.photos), "--dir", str(folder)]
            subprocess.run([*command, "--build", str(size), str(folder)], check=True, env=env)
    trees = args.src or [""]
    runs: dict[str, list[dict[str, Any]]] = {tree: [] for tree in trees}
    for round_number in range(args.repeat):
        for tree in trees:
            env = dict(os.environ, PYTHONPATH=tree) if tree else dict(os.environ)
            command = [sys.executable, __file__, "--photos", str(args.photos), "--dir", str(args.dir)]
            done = subprocess.run(
                [*command, "--measure", str(args.dir), str(primer)], capture_output=True, text=True, env=env
            )
            if done.returncode != 0:
                raise SystemExit(f"{tree or 'installed'}: failed\n{done.stderr[-2000:]}")
            result = json.loads(done.stdout.strip().splitlines()[-1])
            runs[tree].append(result)
            print(
                f"round {round_number + 1}, {tree or 'installed'}: first query"
                f" {result['first_query_seconds']:.2f} s (open {result['open_seconds']:.3f} s),"
                f" read {result['read_mb']:.1f} MB, {result['major_faults']:,} major faults"
            )
    for tree, results in runs.items():
        seconds = statistics.median(r["first_query_seconds"] for r in results)
        print(
            f"{tree or 'installed'}: median first query after a cold open {seconds:.2f} s"
            f" ({args.size:,} images)"
        )


if __name__ == "__main__":
    main()
