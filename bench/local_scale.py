"""Partial-copy retrieval at collection scale (`lookalike.benchmarks.local_scale`): real copies
as queries against their real originals among N synthetic stored images.

    python bench/local_scale.py --photos ../shared/photos --sizes 10000,100000,1000000
"""

from __future__ import annotations

import argparse
import gc
import tempfile
import time
from pathlib import Path

import numpy as np

from lookalike.benchmarks.local_scale import (
    ScaledSource,
    SyntheticSets,
    header,
    real_set,
    run_queries,
    summary,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, required=True)
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache/lookalike/accuracy")
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--sample", type=int, default=60, help="test photos whose copies are queries")
    parser.add_argument("--queries", type=int, default=0, help="at most this many queries (0: all)")
    parser.add_argument("--breadth", type=int, default=32, help="stored images verified per query")
    parser.add_argument("--min-inliers", type=int, default=10)
    parser.add_argument(
        "--flip", type=float, default=0.3125, help="share of a synthetic descriptor's bits flipped"
    )
    parser.add_argument("--mixed", action="store_true", help="draw each synthetic keypoint from any source")
    parser.add_argument(
        "--every-key",
        action="store_true",
        help="read keys that weigh nothing too: how crowded the keypoints are",
    )
    parser.add_argument(
        "--backend", choices=["sqlite", "chdb"], default="sqlite", help="where the key rows live"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    real = real_set(args.photos, args.cache, args.sample, seed=args.seed, workers=args.workers)
    if args.queries:
        keep = np.random.default_rng(args.seed).permutation(len(real.queries))[: args.queries]
        keep.sort()
        real = type(real)(
            real.stored,
            real.detected,
            [real.queries[i] for i in keep],
            [real.query_photos[i] for i in keep],
            [real.query_families[i] for i in keep],
        )
    shown = {p for photos in real.query_photos for p in photos}
    sources = [real.detected[p] for p in sorted(real.detected) if p not in shown]
    synthetic = SyntheticSets(sources, args.flip, args.seed, args.mixed)
    print(
        f"{len(real.stored)} real photos stored, {len(real.queries)} queries, "
        f"{len(sources)} synthetic sources"
    )
    print(header(real))
    for n in [int(s) for s in args.sizes.split(",")]:
        started = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="lookalike-local-scale-") as folder:
            if args.backend == "chdb":
                source = ScaledSource.on_chdb(real.stored, synthetic, n, Path(folder) / "chdb")
                held = 0
            else:
                source = ScaledSource(real.stored, synthetic, n)
                held = source.tables.nbytes()
            built = time.perf_counter() - started
            outcomes = run_queries(source, real, args.breadth, args.min_inliers, args.every_key)
            print(summary(n, real, outcomes, built, held), flush=True)
            if source.index is not None:
                source.index.close()
            del source
            gc.collect()


if __name__ == "__main__":
    main()
