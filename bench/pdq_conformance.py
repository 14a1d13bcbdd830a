"""PDQ conformance: our `pdq` against Meta's C++ reference (`pdqhash`) and Meta's expected hashes.

For every image of the shared PDQ conformance folder and of the shared photos:
- bit-exactness: `pdq_hash(rgb)` vs `pdqhash.compute(rgb)` on the identical RGB array;
- end to end: `hash_file(path, ["pdq"])` (exact and fast mode) vs `pdqhash` fed the same Pillow
  decode (EXIF orientation applied, as lookalike does by default); Meta's rule: for images of
  quality >= 80, within 10 bits;
- fast vs exact: the Hamming distance percentiles of the two modes;
- expected-pdq.tsv: distance of our exact-mode hash to the hashes Meta's tests expect (tolerance 16),
  and the 8 dihedral variants of the bridge photo vs hashing the rotated files.

    .venv/bin/python bench/pdq_conformance.py [--shared ../shared] [--limit N]
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pdqhash
from PIL import Image, ImageOps

import lookalike
from lookalike import Hash
from lookalike.algorithms.pdq import pdq_hash

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}
MEDIAN_TOLERANCE = 10  # Meta: implementations agree within 10 bits for quality >= 80
EXPECTED_TOLERANCE = 16  # Meta's reference test against expected-pdq.tsv


@dataclass
class Row:
    path: Path
    reference: Hash
    same_array: int  # distance of pdq_hash(rgb) to pdqhash.compute(rgb)
    exact: Hash
    fast: Hash

    @property
    def quality(self) -> int:
        return self.reference.quality or 0


def reference_rgb(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        upright = ImageOps.exif_transpose(image)
        return np.ascontiguousarray(np.asarray(upright.convert("RGB")))


def reference_hash(rgb: np.ndarray) -> Hash:
    bits, quality = pdqhash.compute(rgb)
    return Hash.from_bits(bits, int(quality))


def measure(path: Path) -> Row:
    rgb = reference_rgb(path)
    reference = reference_hash(rgb)
    exact = lookalike.hash_file(path, ["pdq"], mode="exact")["pdq"]
    fast = lookalike.hash_file(path, ["pdq"], mode="fast")["pdq"]
    assert isinstance(exact, Hash) and isinstance(fast, Hash)
    return Row(path, reference, pdq_hash(rgb) - reference, exact, fast)


def images_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)


def summarise(title: str, rows: list[Row]) -> None:
    good = [r for r in rows if r.quality >= 80]
    exact_d = np.array([r.exact - r.reference for r in good])
    fast_d = np.array([r.fast - r.reference for r in good])
    fast_exact = np.array([r.fast - r.exact for r in rows])
    good_fast_exact = np.array([r.fast - r.exact for r in good])
    bit_exact = sum(r.same_array == 0 for r in rows)
    print(f"\n== {title}: {len(rows)} images, {len(good)} with reference quality >= 80")
    print(
        f"identical RGB array: {bit_exact}/{len(rows)} bit-exact with pdqhash (quality equal too: "
        f"{sum(r.exact.quality == r.quality for r in rows)}/{len(rows)} in exact mode)"
    )
    for name, d in (("exact mode", exact_d), ("fast mode", fast_d)):
        if d.size:
            share = 100.0 * float((d <= MEDIAN_TOLERANCE).mean())
            print(
                f"end to end, {name}: {share:.2f}% within {MEDIAN_TOLERANCE} bits of pdqhash "
                f"(median {np.median(d):.0f}, p99 {np.percentile(d, 99):.1f}, max {d.max()})"
            )
    for name, d in (("all", fast_exact), ("quality >= 80", good_fast_exact)):
        if d.size:
            print(
                f"fast vs exact ({name}): p50 {np.percentile(d, 50):.0f}, p90 {np.percentile(d, 90):.0f}, "
                f"p99 {np.percentile(d, 99):.1f}, max {d.max()}, "
                f"within {MEDIAN_TOLERANCE}: {100.0 * float((d <= MEDIAN_TOLERANCE).mean()):.2f}%"
            )
    worst = sorted(rows, key=lambda r: r.fast - r.reference, reverse=True)[:5]
    print(
        "largest fast-mode distances:",
        ", ".join(f"{r.path.name} {r.fast - r.reference} (q {r.quality})" for r in worst),
    )


def expected_table(folder: Path, rows: dict[Path, Row]) -> None:
    print(f"\n== expected-pdq.tsv (Meta's tolerance {EXPECTED_TOLERANCE})")
    print(f"{'image':48} {'exact':>5} {'fast':>5} {'pdqhash':>7} {'quality':>7}")
    for line in (folder / "expected-pdq.tsv").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        name, hex_digits = line.split("\t")
        expected = Hash.from_hex(hex_digits.strip())
        row = rows[folder / name]
        print(
            f"{name:48} {row.exact - expected:5} {row.fast - expected:5} "
            f"{row.reference - expected:7} {row.quality:7}"
        )


def dihedral_table(folder: Path) -> None:
    dih = folder / "reg-test-input" / "dih"
    files = sorted(dih.glob("bridge-*.jpg"))  # numbered in Meta's dihedral order
    original = lookalike.hash_file(files[0], ["pdq"], mode="exact", dihedral=True)["pdq"]
    assert isinstance(original, Hash) and original.variants is not None
    print("\n== dihedral: variant k of the original vs the physically transformed file k (exact mode)")
    for variant, path in zip(original.variants, files, strict=True):
        rotated = lookalike.hash_file(path, ["pdq"], mode="exact")["pdq"]
        assert isinstance(rotated, Hash)
        print(f"  {path.name:32} {variant - rotated:3}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared")
    parser.add_argument("--limit", type=int, default=0, help="only the first N photos (0: all)")
    args = parser.parse_args()
    conformance = args.shared / "conformance" / "pdq"
    photos = images_under(args.shared / "photos")
    if args.limit:
        photos = photos[: args.limit]
    conformance_rows = {p: measure(p) for p in images_under(conformance)}
    expected_table(conformance, conformance_rows)
    dihedral_table(conformance)
    summarise("conformance folder", list(conformance_rows.values()))
    photo_rows = []
    for index, path in enumerate(photos, 1):
        photo_rows.append(measure(path))
        if index % 100 == 0:
            print(f"  ... {index}/{len(photos)} photos", file=sys.stderr)
    summarise("shared photos", photo_rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
