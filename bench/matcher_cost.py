"""Hashing cost of the default matcher preset vs fast-mode pHash + PDQ, on the same photos.

    python bench/matcher_cost.py --photos ../shared/photos --rounds 5

Interleaved rounds over the same files (decode included, one process), medians, and the ratio.
Also what `lookalike index add` hashes by default (`default_index_hashes()`, no variants).
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

    def ours(path: str) -> object:
        return hash_file(path, list(specs), dihedral=True)

    def index_default(path: str) -> object:
        return hash_file(path, list(default_index_hashes()))

    baseline_name, baseline = _baseline()
    timings: dict[str, list[float]] = {"preset": [], "baseline": [], "index": []}
    for _ in range(args.rounds):
        for name, function in (("preset", ours), ("baseline", baseline), ("index", index_default)):
            started = time.perf_counter()
            for path in paths:
                function(path)
            timings[name].append(time.perf_counter() - started)
    preset_ms = statistics.median(timings["preset"]) / len(paths) * 1000
    baseline_ms = statistics.median(timings["baseline"]) / len(paths) * 1000
    index_ms = statistics.median(timings["index"]) / len(paths) * 1000
    print(f"{len(paths)} photos, {args.rounds} interleaved rounds, medians per image")
    print(f"  {DEFAULT_PRESET} preset ({', '.join(specs)}, dihedral variants): {preset_ms:.1f} ms")
    print(f"  {baseline_name}: {baseline_ms:.1f} ms")
    print(f"  ratio: {preset_ms / baseline_ms:.2f}x (budget 2x)")
    print(f"  index add's default set ({', '.join(default_index_hashes())}): {index_ms:.1f} ms")


if __name__ == "__main__":
    main()
