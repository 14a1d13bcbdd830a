"""Candidate recall of a matcher preset on the accuracy corpus: keys vs the exact plan.

    python bench/candidates.py --photos ../shared/photos [--backend sqlite|chdb] [--limit N]

Needs the accuracy corpus (it is built and hashed on the first run, then cached; see
docs/accuracy.md). Prints, per half of the photos, how many pairs the exact plan accepts, how
many of them the candidate keys find, and the misses per edit family.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from lookalike.benchmarks.candidate_recall import measure
from lookalike.cache_dir import default_cache_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--photos", type=Path, required=True)
    parser.add_argument("--cache", type=Path, default=default_cache_dir() / "accuracy")
    parser.add_argument("--preset", default="near-duplicate")
    parser.add_argument("--backend", choices=["sqlite", "chdb"], default="sqlite")
    parser.add_argument("--limit", type=int)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    results = measure(
        args.photos,
        args.cache,
        preset=args.preset,
        backend=args.backend,
        limit=args.limit,
        workers=args.workers,
    )
    exact = sum(r.exact_pairs for r in results)
    found = sum(r.found_pairs - r.extra_pairs for r in results)
    share = 100 * found / max(exact, 1)
    print(f"\n{args.preset} on {args.backend}: keys find {found} of {exact} exact-plan pairs ({share:.2f}%)")
    missed: dict[str, int] = {}
    total: dict[str, int] = {}
    for result in results:
        for family, count in result.missed_by_family.items():
            missed[family] = missed.get(family, 0) + count
        for family, count in result.exact_by_family.items():
            total[family] = total.get(family, 0) + count
    for family in sorted(missed, key=lambda f: -missed[f]):
        print(f"  missed {missed[family]:5d} of {total[family]:6d}  {family}")
    print("\nrecall per edit family (pairs with an image of that family):")
    for family, (hit, seen) in sorted(per_edit_family(missed, total).items()):
        print(f"  {family:22s} {hit:7d} of {seen:7d}  {100 * hit / seen:6.2f}%")
    probes = sum(r.probes for r in results) / max(sum(r.images for r in results), 1)
    candidates = sum(r.candidates for r in results) / max(sum(r.images for r in results), 1)
    print(f"per query: {probes:,.0f} key probes, {candidates:,.1f} candidates judged")
    exact_time = sum(r.exact_seconds for r in results)
    keys_time = sum(r.keys_seconds for r in results)
    print(f"time: exact plan {exact_time:.1f} s, keys {keys_time:.1f} s")


def per_edit_family(missed: dict[str, int], total: dict[str, int]) -> dict[str, tuple[int, int]]:
    """(found, exact) pairs per edit family: a pair counts for each family of its two images
    ("crop + jpeg" for crop and for jpeg); pairs of different photos are left out."""
    found: dict[str, tuple[int, int]] = {}
    for pair, count in total.items():
        if pair == "different photos":
            continue
        for family in set(pair.split(" + ")):
            hit, seen = found.get(family, (0, 0))
            found[family] = (hit + count - missed.get(pair, 0), seen + count)
    return found


if __name__ == "__main__":
    main()
