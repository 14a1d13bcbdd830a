"""What a query pays for the stored variants (`phash_eq_regions`: the pictures inside stored
composites) after a write to a large SQLite index: made anew from every entry's variants (how
they were kept before) against brought up to date from the entries the write changed
(`StoredVariants.update`), measured side by side in one run.

    python bench/stored_variants.py --entries 200000 --rounds 5
"""

import argparse
import statistics
import sys
import tempfile
import time

import numpy as np

from lookalike import Hash
from lookalike.candidates.stored_variants import StoredVariants
from lookalike.index import IndexItem, open_index

REGIONS = "phash_eq_regions"


def random_hash(rng: np.random.Generator) -> Hash:
    return Hash(int.from_bytes(rng.bytes(32), "big"), 256)


def item(key: str, rng: np.random.Generator, regions: int) -> IndexItem:
    own = random_hash(rng)
    return IndexItem(key, {REGIONS: own.with_variants([own, *(random_hash(rng) for _ in range(regions))])})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=200_000)
    parser.add_argument("--regions", type=float, default=0.83, help="pictures found per image, on average")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(1)
    with tempfile.TemporaryDirectory() as folder, open_index(f"sqlite:///{folder}/v.db") as index:
        counts = rng.poisson(args.regions, size=args.entries).tolist()
        for start in range(0, args.entries, 20_000):
            index.add(item(f"e{i}", rng, counts[i]) for i in range(start, min(start + 20_000, args.entries)))
        stored = index.stored_variants(REGIONS)
        assert stored is not None
        print(f"{args.entries:,} entries, {len(stored):,} stored variants")
        anew: list[float] = []
        kept: list[float] = []
        for round_ in range(args.rounds):
            index.add([item(f"new{round_}", rng, 2)])  # one upload, then a search
            started = time.perf_counter()
            fresh = StoredVariants.from_blobs(stored.layout, index.variant_rows(REGIONS))
            anew.append(time.perf_counter() - started)
            started = time.perf_counter()
            updated = index.stored_variants(REGIONS)
            kept.append(time.perf_counter() - started)
            assert updated is not None and len(updated) == len(fresh)
        made, brought = statistics.median(anew), statistics.median(kept)
        print(f"first query after one added image, median of {args.rounds}:")
        print(f"  made anew (before)   {made * 1000:9.1f} ms")
        print(f"  brought up to date   {brought * 1000:9.1f} ms   ({made / brought:.0f}x faster)")


if __name__ == "__main__":
    sys.exit(main())
