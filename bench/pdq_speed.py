"""PDQ speed: lookalike's NumPy PDQ against Meta's C++ reference (`pdqhash`) on one large JPEG.

Interleaved rounds, medians, ratios (this machine is shared and noisy). Two comparisons:
- end to end, as a user runs them: Pillow decode + RGB + `pdqhash.compute`
  against `lookalike.hash_file(path, ["pdq"])` in fast mode (default) and exact mode;
- hashing only, on one identical RGB array: `pdqhash.compute` against `pdq_hash`.

    .venv/bin/python bench/pdq_speed.py [IMAGE] [--rounds 7]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pdqhash
from PIL import Image, ImageOps

import lookalike
from lookalike.algorithms.pdq import pdq_hash

DEFAULT_IMAGE = (
    Path(__file__).resolve().parents[2] / "shared/conformance/pdq/reg-test-input/exif-rotn/exif-rotn-1.jpg"
)


def pdqhash_end_to_end(path: Path) -> None:
    """What a pdqhash user writes (no EXIF transpose: the default image is upright anyway)."""
    with Image.open(path) as image:
        rgb = np.asarray(image.convert("RGB"))
    pdqhash.compute(rgb)


def timed(function: Callable[[], object]) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("image", type=Path, nargs="?", default=DEFAULT_IMAGE)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    path: Path = args.image
    with Image.open(path) as image:
        width, height = image.size
        rgb = np.ascontiguousarray(np.asarray(ImageOps.exif_transpose(image).convert("RGB")))
    cases: dict[str, Callable[[], object]] = {
        "pdqhash end to end": lambda: pdqhash_end_to_end(path),
        "lookalike fast": lambda: lookalike.hash_file(path, ["pdq"]),
        "lookalike exact": lambda: lookalike.hash_file(path, ["pdq"], mode="exact"),
        "pdqhash.compute(rgb)": lambda: pdqhash.compute(rgb),
        "pdq_hash(rgb)": lambda: pdq_hash(rgb),
    }
    for function in cases.values():  # warm-up: imports, caches
        function()
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(args.rounds):
        for name, function in cases.items():
            times[name].append(timed(function))
    medians = {name: statistics.median(values) for name, values in times.items()}
    print(f"{path.name}: {width}x{height} ({width * height / 1e6:.1f} MP), {args.rounds} interleaved rounds")
    for name, median in medians.items():
        print(f"  {name:24} median {median * 1000:8.1f} ms")
    peer = medians["pdqhash end to end"]
    print(
        f"end to end: fast mode {peer / medians['lookalike fast']:.1f}x faster than pdqhash, "
        f"exact mode {peer / medians['lookalike exact']:.2f}x"
    )
    print(
        f"hashing an identical array: pdq_hash is "
        f"{medians['pdqhash.compute(rgb)'] / medians['pdq_hash(rgb)']:.2f}x the speed of pdqhash.compute"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
