"""Candidate recall of a matcher preset on the accuracy corpus: keys vs the exact plan.

    python bench/candidates.py --photos ../shared/photos [--backend sqlite|chdb] [--limit N]
    python bench/candidates.py --photos ../shared/photos --offline [--neighbours 0,2,4]

Needs the accuracy corpus (it is built and hashed on the first run, then cached; see
docs/accuracy.md). Prints, per half of the photos, how many pairs the exact plan accepts, how
many of them the candidate keys find, and the misses per edit family.

`--offline` computes the exact plan's pairs once (cached beside the corpus's hashes) and asks,
without an index, which of them the key tables would find, for the default layout probing one-bit
neighbours at the frequencies 0 < r + c <= k for each k of `--neighbours`: recall on the corpus
and on the planted copies of `bench/scale.py` (its 60 photos), and the probes each query hash
costs. Seconds instead of a quarter of an hour once the pairs are cached.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from lookalike.benchmarks.candidate_recall import (
    exact_pairs,
    grouped,
    load_corpus,
    measure,
    offline_found,
    probes_per_hash,
    second_hop_found,
    undirected,
)
from lookalike.benchmarks.corpus import CorpusLayout
from lookalike.benchmarks.scale import load_real, make_collection
from lookalike.cache_dir import default_cache_dir
from lookalike.candidates.keys import dct_layout
from lookalike.matcher import Matcher

PLANTED_PHOTOS = 60  # as bench/scale.py plants them


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--photos", type=Path, required=True)
    parser.add_argument("--cache", type=Path, default=default_cache_dir() / "accuracy")
    parser.add_argument("--preset", default="near-duplicate")
    parser.add_argument("--backend", choices=["sqlite", "chdb"], default="sqlite")
    parser.add_argument("--limit", type=int)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--offline", action="store_true", help="layouts compared without an index")
    parser.add_argument("--neighbours", default="0", help="with --offline: neighbour reaches to compare")
    args = parser.parse_args()
    if args.offline:
        offline(args)
        return
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


def offline(args: argparse.Namespace) -> None:
    rule = Matcher.preset(args.preset)
    corpus = load_corpus(args.photos, args.cache, rule, workers=args.workers, limit=args.limit)
    pairs_cache = CorpusLayout(args.cache, 512, "jpeg").folder / "candidate-pairs"
    halves = [exact_pairs(corpus, rule, rows, pairs_cache) for rows in corpus.halves]
    real = load_real(args.photos, args.cache, rule, args.workers)
    planted_rows = make_collection(real, len(real.photo), PLANTED_PHOTOS).planted_rows.astype(np.intp)
    planted = exact_pairs(corpus, rule, planted_rows, pairs_cache)
    print("neighbours reach, probes per query hash, then for the corpus's and the 100k planted pairs:")
    print("exact-plan pairs found, and pairs whose two images the found pairs join in one group")
    for reach in [int(k) for k in args.neighbours.split(",")]:
        layout = dct_layout(16, neighbour_frequencies=reach)
        assert layout is not None
        counts = [0, 0, 0, 0, 0, 0]  # corpus found, grouped, total; planted found, grouped, total
        for pairs, at in [*((half, 0) for half in halves), (planted, 3)]:
            first, second, either = undirected(pairs, offline_found(corpus, rule, pairs, layout))
            counts[at] += int(either.sum())
            counts[at + 1] += grouped(first, second, either)
            counts[at + 2] += len(either)
            joined, extra = second_hop_found(first, second, either)
            share = 100 * joined / max(len(either), 1)
            print(
                f"    with the second hop: {joined:,d} of {len(either):,d} ({share:.3f}%), {extra:,d} judged"
            )
        shares = [100 * counts[i] / max(counts[2 if i < 3 else 5], 1) for i in (0, 1, 3, 4)]
        print(
            f"{reach:3d} {probes_per_hash(layout):4d}  corpus {counts[0]:,d} ({shares[0]:.3f}%),"
            f" grouped {counts[1]:,d} ({shares[1]:.3f}%) of {counts[2]:,d};"
            f"  planted {counts[3]:,d} ({shares[2]:.3f}%), grouped {counts[4]:,d} ({shares[3]:.3f}%)"
            f" of {counts[5]:,d}",
            flush=True,
        )


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
