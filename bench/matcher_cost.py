"""Hashing cost of the default matcher preset vs fast-mode pHash + PDQ, on the same photos.

    python bench/matcher_cost.py --photos ../shared/photos --rounds 5

Interleaved rounds over the same files (decode included, one process), medians, and the ratio.
Also the preset with local features (issue 18's budget: descriptors + hashes <= 3x), and what
`lookalike index add` computes for an image by default (`default_index_hashes()` with their query
variants and, when OpenCV is installed, local features), and what a search computes for its own
picture (the preset's hashes with a search's keypoints: `local="query"`, the finer set too).
PDQ is lookalike's `pdq` when it is registered, else Meta's reference (pdqhash) on lookalike's
fast decode, which is what lookalike's own PDQ will be measured against.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from lookalike import algorithm_names, hash_file
from lookalike.decode import decode
from lookalike.discover import iter_image_paths
from lookalike.local.features import local_features_available
from lookalike.matcher import DEFAULT_PRESET, Matcher, default_index_hashes


def _baseline() -> tuple[str, Callable[[str], object]]:
    if "pdq" in algorithm_names():
        return "lookalike phash + pdq (fast)", lambda path: hash_file(path, ["phash", "pdq"])

    import numpy as np
    import pdqhash

    def phash_and_reference_pdq(path: str) -> object:
        hash_file(path, ["phash"])
        image = decode(path, draft_min_side=64).image.convert("RGB")
        return pdqhash.compute(np.ascontiguousarray(np.asarray(image)))

    return "lookalike phash (fast) + pdqhash reference", phash_and_reference_pdq


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--photos", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--limit", type=int, default=120)
    args = parser.parse_args()
    every = sorted(str(p) for p in iter_image_paths([args.photos], recursive=True))
    paths = every[:: max(1, len(every) // args.limit)][: args.limit]  # spread over the whole folder
    specs = Matcher.preset(DEFAULT_PRESET).algorithms

    local = local_features_available()

    def ours(path: str) -> object:
        return hash_file(path, list(specs), dihedral=True)

    def ours_verified(path: str) -> object:
        return hash_file(path, list(specs), dihedral=True, local=local)

    def search_query(path: str) -> object:
        return hash_file(path, list(specs), dihedral=True, local="query" if local else False)

    def index_default(path: str) -> object:
        return hash_file(path, list(default_index_hashes()), dihedral=True, local=local)

    baseline_name, baseline = _baseline()
    jobs: dict[str, Callable[[str], object]] = {
        "preset": ours,
        "baseline": baseline,
        "verified": ours_verified,
        "index": index_default,
        "search": search_query,
    }
    timings: dict[str, list[float]] = {name: [] for name in jobs}
    for _ in range(args.rounds):
        for name, function in jobs.items():
            started = time.perf_counter()
            for path in paths:
                function(path)
            timings[name].append(time.perf_counter() - started)
    ms = {name: statistics.median(spent) / len(paths) * 1000 for name, spent in timings.items()}
    base = ms["baseline"]
    with_local = " + local features (both mirrors)" if local else " (no OpenCV: no local features)"
    print(f"{len(paths)} photos, {args.rounds} interleaved rounds, medians per image")
    print(f"  {baseline_name}: {base:.1f} ms")
    print(f"  {DEFAULT_PRESET} preset ({', '.join(specs)}, dihedral variants): {ms['preset']:.1f} ms")
    print(f"  ratio: {ms['preset'] / base:.2f}x (budget 2x)")
    verified = ms["verified"]
    print(f"  the same{with_local}: {verified:.1f} ms, {verified / base:.2f}x (issue 18's budget 3x)")
    stored = ", ".join(default_index_hashes()) + " + variants" + with_local
    print(f"  what index add computes ({stored}): {ms['index']:.1f} ms, {ms['index'] / base:.2f}x")
    searched = ms["search"]
    print(
        f"  what a search computes (the preset's hashes + a search's keypoints and finer set): "
        f"{searched:.1f} ms, {searched / base:.2f}x ({searched / verified:.2f}x with local features)"
    )


if __name__ == "__main__":
    main()
