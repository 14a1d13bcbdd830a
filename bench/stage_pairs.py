"""The duplicate search of bench/scale.py alone, on an index built once and kept: its time, the
pairs it finds saved for comparing two versions of the stage, optionally a cProfile.

    python bench/stage_pairs.py --photos ../shared/photos --size 100000 --dir /tmp/idx100k --pairs after.npy
    PYTHONPATH=<worktree of main>/src python bench/stage_pairs.py ... --pairs before.npy
"""

import argparse
import cProfile
import pstats
import resource
import shutil
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

p = argparse.ArgumentParser()
p.add_argument("--photos", type=Path, required=True)
p.add_argument("--size", type=int, default=100000)
p.add_argument("--dir", type=Path, required=True)
p.add_argument("--pairs", type=Path)
p.add_argument("--profile", type=Path)
p.add_argument("--batch", type=int, default=2000)
p.add_argument("--keep-snapshot", action="store_true")
a = p.parse_args()
rule = Matcher.preset("near-duplicate")
real = load_real(a.photos, default_cache_dir() / "accuracy", rule)
coll = make_collection(real, a.size, 60)
a.dir.mkdir(parents=True, exist_ok=True)
db = a.dir / "index.db"
if not db.exists():
    t = time.perf_counter()
    idx = open_index(str(db))
    log: list[str] = []
    bench_scale.build(idx, coll, log)
    idx.close()
    print("built", time.perf_counter() - t, file=sys.stderr)
if not a.keep_snapshot:
    for f in a.dir.glob("index.db.search*"):
        shutil.rmtree(f, ignore_errors=True)
idx = open_index(str(db))
keys = coll.keys(0, a.size)
found = idx.ids_by_key(keys)
ids = np.array([found[k] for k in keys], dtype=np.int64)
prof = cProfile.Profile() if a.profile else None
t = time.perf_counter()
if prof:
    prof.enable()
pairs = rule_pairs(idx, rule, queries=coll.batches(a.batch, True, ids), queries_by_id=coll.queries_by_id(ids))
if prof:
    prof.disable()
secs = time.perf_counter() - t
mem = getattr(idx, "search_memory", lambda: 0)() / 2**20
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(
    f"size {a.size} dedupe {secs:.2f} s pairs {len(pairs.first)} search_mem {mem:.0f} MB peak {peak:.0f} MB"
)
if a.pairs:
    np.save(a.pairs, np.stack([pairs.first, pairs.second, pairs.distances]))
if prof:
    prof.dump_stats(a.profile)
    pstats.Stats(str(a.profile)).sort_stats("cumulative").print_stats(45)
idx.close()
