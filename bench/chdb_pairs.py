"""The duplicate search of bench/scale.py alone on chDB, on an index built once and kept (the chDB
twin of stage_pairs.py): its time, peak memory, and the pairs it finds (row pairs, saved for
comparing two versions of the stage).

    python bench/chdb_pairs.py --photos ../shared/photos --size 100000 --dir /tmp/ch100k --pairs after.npy
    PYTHONPATH=<worktree of main>/src python bench/chdb_pairs.py ... --pairs before.npy
    flock /tmp/lookalike-1m.lock python bench/chdb_pairs.py --photos ../shared/photos --size 1000000 ...
"""

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import scale as bench_scale
from lookalike.benchmarks.scale import load_real, make_collection
from lookalike.cache_dir import default_cache_dir
from lookalike.dedupe.pairs import rule_pairs
from lookalike.index.base import open_index
from lookalike.matcher import Matcher

parser = argparse.ArgumentParser()
parser.add_argument("--photos", type=Path, required=True)
parser.add_argument("--size", type=int, default=100000)
parser.add_argument("--dir", type=Path, required=True, help="the chDB index (built when absent)")
parser.add_argument("--pairs", type=Path, help="save the pairs found here (.npy)")
parser.add_argument("--build-only", action="store_true")
args = parser.parse_args()
rule = Matcher.preset("near-duplicate")
real = load_real(args.photos, default_cache_dir() / "accuracy", rule)
collection = make_collection(real, args.size, bench_scale.PLANTED_PHOTOS)
fresh = not args.dir.exists()
index = open_index(f"chdb://{args.dir}/index")
if fresh:
    began = time.perf_counter()
    bench_scale.build(index, collection, [])
    index.compact()
    print(f"built in {time.perf_counter() - began:.1f} s", flush=True)
if args.build_only:
    index.close()
    sys.exit(0)
keys = collection.keys(0, args.size)
found_ids = index.ids_by_key(keys)
ids = np.array([found_ids[k] for k in keys], dtype=np.int64)
began = time.perf_counter()


def progress(done: int, total: int) -> None:
    if done % 20000 == 0:
        elapsed = time.perf_counter() - began
        print(f"  {done:,} of {total:,}: {elapsed:.1f} s, load {os.getloadavg()}", flush=True)


batches = collection.batches(bench_scale.QUERY_BATCH, True, ids)
pairs = rule_pairs(
    index,
    rule,
    queries=batches,
    total=args.size,
    progress=progress,
    queries_by_id=collection.queries_by_id(ids),
)
seconds = time.perf_counter() - began
row_of = {int(v): i for i, v in enumerate(ids.tolist())}
found = sorted(
    {
        (min(row_of[a], row_of[b]), max(row_of[a], row_of[b]))
        for a, b in zip(pairs.first.tolist(), pairs.second.tolist(), strict=True)
    }
)
if args.pairs:
    np.save(args.pairs, np.array(found, dtype=np.int64).reshape(-1, 2))
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"size": args.size, "seconds": seconds, "pairs": len(found), "peak_mb": peak}))
index.close()
