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


Results = dict[str, lookalike.HashResult | Exception]


def run(files: list[Path], algorithms: list[str], mode: str, workers: int | None) -> Results:
    return dict(lookalike.hash_files(files, algorithms, mode=mode, workers=workers))  # type: ignore[arg-type]


def distances(
    files: list[Path], groups: dict[str, str], exact: Results, fast: dict[str, Results]
) -> tuple[dict[str, dict[str, list[int]]], list[str]]:
    """{group: {algorithm: [distance per file]}} ("all" included), and the files that failed.

    `fast` maps each algorithm to the fast-mode results that hold it.
    """
    by_group: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    failed = []
    for path in files:
        a = exact[str(path)]
        if isinstance(a, Exception):
            failed.append(str(a))
            continue
        for name, results in fast.items():
            b = results[str(path)]
            if isinstance(b, Exception):
                failed.append(str(b))
                continue
            exact_hash, fast_hash = a[name], b[name]
            assert isinstance(exact_hash, Hash) and isinstance(fast_hash, Hash)
            distance = exact_hash - fast_hash
            by_group[groups[str(path)]][name].append(distance)
            by_group["all"][name].append(distance)
    return by_group, sorted(set(failed))


def print_table(title: str, by_group: dict[str, dict[str, list[int]]], algorithms: list[str]) -> None:
    groups = ["all", *sorted(g for g in by_group if g != "all")]
    counts = ", ".join(f"{g}: {len(next(iter(by_group[g].values())))}" for g in groups)
    print(f"\n### {title}\n\nimages: {counts}\n")
    print("| algorithm | bits | " + " | ".join(f"{g}: mean / p99 / max" for g in groups) + " |")
    print("|---|---:|" + "---:|" * len(groups))
    for name in algorithms:
        bits = lookalike.algorithms.parse_spec(name).nbits
        cells = []
        for group in groups:
            values = by_group[group][name]
            cells.append(f"{statistics.mean(values):.2f} / {np.percentile(values, 99):.1f} / {max(values)}")
        print(f"| {name} | {bits} | " + " | ".join(cells) + " |")


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
    groups = {str(path): group_of(path) for path in files}
    exact = run(files, algorithms, "exact", args.workers)
    together = run(files, algorithms, "fast", args.workers)
    by_group, failed = distances(files, groups, exact, {name: together for name in algorithms})
    print_table("all algorithms requested together (one decode)", by_group, algorithms)
    alone = {name: run(files, [name], "fast", args.workers) for name in algorithms}
    by_group, failed_alone = distances(files, groups, exact, alone)
    print_table("each algorithm requested alone (smallest decode it allows)", by_group, algorithms)
    if "16-bit / float" not in by_group:
        print("\n(no 16-bit or float images in this folder)")
    for reason in sorted(set(failed) | set(failed_alone)):
        print(f"failed: {reason}")


if __name__ == "__main__":
    main()
