"""Region proposals on pictures pasted into pictures, from scikit-image's sample images alone.

    python bench/region_probe.py
    PYTHONPATH=../other/src python bench/region_probe.py     # another version of the rule

Every ordered pair of the sample pictures: the second (260 x 200) pasted into the first (600 x
400) at two places. Counts the insets proposed at their box (intersection over union >= 0.97),
the proposals on the pictures alone (each a crop variant more, wanted none) and the time per
image. A check of `lookalike.regions` on pictures the benchmark's photos never showed it.
"""

from __future__ import annotations

import itertools
import statistics
import time

import numpy as np
from PIL import Image
from skimage import data

from lookalike.gutters import Box
from lookalike.regions import propose_regions

NAMES = [
    "astronaut", "coffee", "chelsea", "rocket", "camera", "gravel", "grass", "brick", "moon",
    "immunohistochemistry", "hubble_deep_field", "retina", "colorwheel", "logo", "page", "text",
    "coins", "horse",
]  # fmt: skip
PLACES = [(60, 40), (300, 170)]
CANVAS, INSET = (600, 400), (260, 200)


def _picture(name: str) -> Image.Image:
    pixels = np.asarray(getattr(data, name)())
    if pixels.dtype == bool:
        pixels = pixels.astype(np.uint8) * 255
    return Image.fromarray(pixels.astype(np.uint8)).convert("RGB")


def _overlap(a: Box, b: Box) -> float:
    width = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - width * height
    return width * height / union


def main() -> None:
    pictures = {name: _picture(name) for name in NAMES}
    found = total = 0
    seconds: list[float] = []
    for outer, inner in itertools.permutations(NAMES, 2):
        canvas, inset = pictures[outer].resize(CANVAS), pictures[inner].resize(INSET)
        for place in PLACES:
            composite = canvas.copy()
            composite.paste(inset, place)
            truth = (*place, place[0] + INSET[0], place[1] + INSET[1])
            started = time.perf_counter()
            boxes = propose_regions(np.asarray(composite))
            seconds.append(time.perf_counter() - started)
            found += any(_overlap(box, truth) >= 0.97 for box in boxes)
            total += 1
    alone = [len(propose_regions(np.asarray(picture.resize(CANVAS)))) for picture in pictures.values()]
    print(f"insets proposed at their box: {found} of {total} ({100 * found / total:.1f}%)")
    print(f"proposals on the {len(alone)} pictures alone: {sum(alone)}")
    print(f"median time per composite: {1000 * statistics.median(seconds):.1f} ms")


if __name__ == "__main__":
    main()
