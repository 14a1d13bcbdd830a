"""How far fast mode's hashes are from exact mode's, per algorithm, over a folder of real photos.

    python bench/fast_vs_exact.py [--photos ../shared/photos] [--workers 2]

Both modes apply EXIF orientation, so the distance measured is only what reduced-scale decoding
and box reduction change. Prints the mean, 99th percentile and maximum Hamming distance per
algorithm, for all images and split by how fast mode treated them: JPEGs decoded at reduced
scale, other formats box-reduced, and 16-bit / float images (which fast mode scales to 8 bits
where exact mode clips, as Pillow and ImageHash do).
"""

from __future__ import annotations

import argparse
import statistics
from collections import defaultdict
from pathlib import Path

import numpy as np
from PIL import Image

import lookalike
from lookalike.hash import Hash

FAMILIES = ["ahash", "dhash", "phash", "whash", "colorhash", "pdq"]
SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".heic", ".avif"}


def group_of(path: Path) -> str:
    with Image.open(path) as image:
        if image.mode.startswith("I") or image.mode == "F":
            return "16-bit / float"
        return "JPEG (reduced-scale decode)" if image.format == "JPEG" else "other formats (box reduce)"


def distances(
    files: list[Path], algorithms: list[str], workers: int
) -> tuple[dict[str, dict[str, list[int]]], list[str]]:
    """{group: {algorithm: [distance per file]}}, and the files that failed."""
    exact = dict(lookalike.hash_files(files, algorithms, mode="exact", workers=workers))
    fast = dict(lookalike.hash_files(files, algorithms, mode="fast", workers=workers))
    by_group: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    failed = []
    for path in files:
        a, b = exact[str(path)], fast[str(path)]
        if isinstance(a, Exception) or isinstance(b, Exception):
            failed.append(str(a if isinstance(a, Exception) else b))
            continue
        group = group_of(path)
        for name in algorithms:
            exact_hash, fast_hash = a[name], b[name]
            assert isinstance(exact_hash, Hash) and isinstance(fast_hash, Hash)
            distance = exact_hash - fast_hash
            by_group[group][name].append(distance)
            by_group["all"][name].append(distance)
    return by_group, failed


def print_table(title: str, table: dict[str, list[int]], algorithms: list[str]) -> None:
    count = len(next(iter(table.values()))) if table else 0
    print(f"\n### {title} ({count} images)\n")
    print("| algorithm | bits | mean | 99th percentile | max | identical |")
    print("|---|---:|---:|---:|---:|---:|")
    for name in algorithms:
        values = table.get(name, [])
        if not values:
            continue
        bits = lookalike.algorithms.parse_spec(name).nbits
        identical = sum(v == 0 for v in values) / len(values)
        print(
            f"| {name} | {bits} | {statistics.mean(values):.2f} | {np.percentile(values, 99):.1f} "
            f"| {max(values)} | {identical:.0%} |"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    here = Path(__file__).resolve().parent
    parser.add_argument("--photos", type=Path, default=here.parent.parent / "shared" / "photos")
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args(argv)
    files = sorted(p for p in args.photos.rglob("*") if p.suffix.lower() in SUFFIXES)
    if not files:
        parser.error(f"no photos under {args.photos}")
    algorithms = [name for name in FAMILIES if name in lookalike.algorithm_names()]
    sides = ", ".join(f"{n} {lookalike.algorithms.parse_spec(n).working_side}" for n in algorithms)
    print(f"# fast vs exact over {len(files)} files in {args.photos}")
    print(f"\nfast-mode working sides (shorter side kept, pixels): {sides}")
    by_group, failed = distances(files, algorithms, args.workers)
    for group in ["all", *sorted(g for g in by_group if g != "all")]:
        print_table(group, by_group[group], algorithms)
    if "16-bit / float" not in by_group:
        print("\n(no 16-bit or float images in this folder)")
    for reason in failed:
        print(f"failed: {reason}")


if __name__ == "__main__":
    main()
