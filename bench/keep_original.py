"""How often `lookalike dupes` keeps the original of a group, on real photos.

    python bench/keep_original.py --photos ../shared/photos --limit 60

Each photo (a seeded random sample of `--limit` of them) becomes a family: the photo's own file
and 4-8 copies derived from it by known edits (small copy, 2x upscale saved as PNG, JPEG
quality 30, noise, halftone, mosaic, blur, crop, colour change, rotation, mirror:
`lookalike.benchmarks.derived_copies`). All families are indexed together and de-duplicated as
`lookalike dupes` does (near-duplicate preset, `--keep auto`). Prints the share of groups holding
an original that kept it, the share of copies whose relation was named right, and the misses.
The committed test (tests/test_dupes_keep.py) runs the same on the committed photos.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

from lookalike.benchmarks.corpus import find_photos
from lookalike.benchmarks.keep_original import make_families, measure


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--photos", type=Path, default=Path("../shared/photos"))
    parser.add_argument("--limit", type=int, default=60, help="How many photos (a seeded random sample).")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=None)
    arguments = parser.parse_args()
    photos = [photo.path for photo in find_photos(arguments.photos)]
    sample = sorted(random.Random(arguments.seed).sample(photos, min(arguments.limit, len(photos))))
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="lookalike-keep-bench-") as folder:
        families = make_families(sample, Path(folder), seed=arguments.seed)
        copies = sum(len(family.copies) for family in families)
        result = measure(families, workers=arguments.workers)
    elapsed = time.perf_counter() - started
    print(f"photos: {len(sample)} of {len(photos)} under {arguments.photos}, {copies} derived copies")
    print(f"original kept: {result.kept}/{result.groups} groups = {result.rate:.1%}")
    print(
        f"relations named right (groups that kept the original): {result.relations_right}/"
        f"{result.relations_total} = {result.relation_rate:.1%}"
    )
    for (expected, named), count in result.confusions.most_common():
        print(f"  {expected} named {named}: {count}")
    for original, kept in result.missed:
        print(f"  missed: {original} (kept {kept})")
    print(f"time: {elapsed:.0f} s")


if __name__ == "__main__":
    main()
