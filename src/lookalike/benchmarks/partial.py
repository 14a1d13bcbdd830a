"""Partial copies the benchmark makes of a photo: crops of any shape, rotation with a crop,
perspective, the photo inside another photo, and collages.

Pure PIL functions, deterministic for a seed: a crop box, an angle, a place is drawn from
`numpy.random.default_rng(seed)`, and the benchmark derives the seed from the photo's name, so
every photo gets its own box, the same in every run. Composites (`picture_in_picture`,
`collage`) also take other photos ("donors"), which the corpus builder chooses.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageOps

Span = tuple[float, float]  # a range a value is drawn from, uniformly
Box = tuple[int, int, int, int]  # left, top, right, bottom (right and bottom exclusive), as PIL
LIGHT_KEEP = (0.80, 0.96)  # share of each side a light crop keeps
HEAVY_AREA = (0.30, 0.60)  # share of the area a heavy crop keeps


# ----- crops ------------------------------------------------------------------------------------


def _uneven_cut(side: int, keep: float, rng: np.random.Generator) -> tuple[int, int]:
    """(start, stop) of a span keeping at least `keep` of `side`, the rest cut off the two ends
    in a random proportion."""
    cut = math.floor(side * (1.0 - keep))
    before = math.floor(cut * rng.uniform())
    return before, side - (cut - before)


def light_crop_box(size: tuple[int, int], rng: np.random.Generator, keep: Span = LIGHT_KEEP) -> Box:
    """A crop box keeping a share of each side drawn in `keep` (so >= 80% by default); each of
    the four sides is cut by its own random amount."""
    width, height = size
    left, right = _uneven_cut(width, rng.uniform(keep[0], keep[1]), rng)
    top, bottom = _uneven_cut(height, rng.uniform(keep[0], keep[1]), rng)
    return left, top, right, bottom


def heavy_crop_box(size: tuple[int, int], rng: np.random.Generator, area: Span = HEAVY_AREA) -> Box:
    """A crop box keeping a share of the area drawn in `area`, of a random aspect (within 1.5x
    of the picture's), off centre: on each axis it sits in the outer 35% of the room it has."""
    width, height = size
    kept = rng.uniform(area[0], area[1])
    stretch = math.exp(rng.uniform(-0.2, 0.2))
    share_w = min(1.0, math.sqrt(kept) * stretch)
    share_h = min(1.0, kept / share_w)
    box_w, box_h = max(1, round(width * share_w)), max(1, round(height * share_h))

    def start(room: int) -> int:
        offset = rng.uniform(0.0, 0.35)
        return round(room * (offset if rng.integers(2) else 1.0 - offset))

    left, top = start(width - box_w), start(height - box_h)
    return left, top, left + box_w, top + box_h


def crop_uneven(image: Image.Image, seed: int, heavy: bool = False, flip: str | None = None) -> Image.Image:
    """A crop with a random box (`light_crop_box`, or `heavy_crop_box`), then optionally
    mirrored (`flip="horizontal"`) or turned upside down (`flip="vertical"`)."""
    rng = np.random.default_rng(seed)
    box = heavy_crop_box(image.size, rng) if heavy else light_crop_box(image.size, rng)
    result = image.crop(box)
    if flip == "horizontal":
        return ImageOps.mirror(result)
    if flip == "vertical":
        return ImageOps.flip(result)
    return result


# ----- rotation and perspective -----------------------------------------------------------------


def inscribed_size(width: float, height: float, radians: float) -> tuple[float, float]:
    """The largest axis-aligned rectangle inside a `width` x `height` rectangle rotated by
    `radians` about its centre (same centre): where it touches the rotated edges.

    Either the rectangle is thin for the angle, and the inner rectangle's corners touch the two
    long edges only (its half short side is then half the rotated short side over sin or cos),
    or all four corners touch, which two linear equations give."""
    sin, cos = abs(math.sin(radians)), abs(math.cos(radians))
    long_side, short_side = max(width, height), min(width, height)
    if short_side <= 2.0 * sin * cos * long_side or abs(sin - cos) < 1e-10:
        half = short_side / 2.0
        if width >= height:
            return half / sin, half / cos
        return half / cos, half / sin
    cos_2a = cos * cos - sin * sin
    return (width * cos - height * sin) / cos_2a, (height * cos - width * sin) / cos_2a


def rotate_crop(image: Image.Image, seed: int, degrees: Span = (10.0, 45.0)) -> Image.Image:
    """Rotated by an angle drawn in `degrees`, either way, then cropped to the largest upright
    rectangle inside the rotated picture (less a 2-pixel margin): no black corners."""
    rng = np.random.default_rng(seed)
    angle = rng.uniform(degrees[0], degrees[1]) * (1 if rng.integers(2) else -1)
    rotated = image.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=(0, 0, 0))
    inner_w, inner_h = inscribed_size(image.width, image.height, math.radians(angle))
    inner_w, inner_h = max(1, math.floor(inner_w) - 4), max(1, math.floor(inner_h) - 4)
    left, top = (rotated.width - inner_w) // 2, (rotated.height - inner_h) // 2
    return rotated.crop((left, top, left + inner_w, top + inner_h))


def _perspective_coefficients(
    output: Sequence[tuple[float, float]], source: Sequence[tuple[float, float]]
) -> list[float]:
    """PIL's 8 perspective coefficients mapping each `output` corner to its `source` corner."""
    rows, values = [], []
    for (x, y), (u, v) in zip(output, source, strict=True):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        values += [u, v]
    solution = np.linalg.solve(np.array(rows, dtype=np.float64), np.array(values, dtype=np.float64))
    return [float(c) for c in solution]


def perspective(image: Image.Image, seed: int, squeeze: Span = (0.08, 0.18)) -> Image.Image:
    """A mild keystone, as a photo of a print or a screen taken at an angle: one side (drawn at
    random) shortened by a share drawn in `squeeze`, then cropped to the part every row or
    column covers, so no black triangles remain."""
    rng = np.random.default_rng(seed)
    width, height = image.size
    side = ("top", "bottom", "left", "right")[int(rng.integers(4))]
    inset_x = rng.uniform(squeeze[0], squeeze[1]) * width / 2
    inset_y = rng.uniform(squeeze[0], squeeze[1]) * height / 2
    w, h = float(width), float(height)
    corners = {  # where the picture's corners go: top-left, top-right, bottom-right, bottom-left
        "top": [(inset_x, 0.0), (w - inset_x, 0.0), (w, h), (0.0, h)],
        "bottom": [(0.0, 0.0), (w, 0.0), (w - inset_x, h), (inset_x, h)],
        "left": [(0.0, inset_y), (w, 0.0), (w, h), (0.0, h - inset_y)],
        "right": [(0.0, 0.0), (w, inset_y), (w, h - inset_y), (0.0, h)],
    }[side]
    coefficients = _perspective_coefficients(corners, [(0.0, 0.0), (w, 0.0), (w, h), (0.0, h)])
    warped = image.transform(
        image.size, Image.Transform.PERSPECTIVE, coefficients, Image.Resampling.BICUBIC, fillcolor=(0, 0, 0)
    )
    margin_x, margin_y = math.ceil(inset_x) + 1, math.ceil(inset_y) + 1
    box = (
        (margin_x, 0, width - margin_x, height)
        if side in ("top", "bottom")
        else (0, margin_y, width, height - margin_y)
    )
    return warped.crop(box)


# ----- composites: the photo with other photos ---------------------------------------------------


def picture_in_picture(
    image: Image.Image, seed: int, donors: Sequence[Image.Image], scale: Span = (0.3, 0.7)
) -> Image.Image:
    """The photo scaled by a factor drawn in `scale` and pasted at a random place inside another
    photo (the donor, cut to the photo's own size and aspect)."""
    rng = np.random.default_rng(seed)
    canvas = ImageOps.fit(donors[0], image.size, Image.Resampling.BICUBIC)
    factor = rng.uniform(scale[0], scale[1])
    inset = image.resize(
        (max(1, round(image.width * factor)), max(1, round(image.height * factor))), Image.Resampling.LANCZOS
    )
    left = int(rng.integers(0, image.width - inset.width + 1))
    top = int(rng.integers(0, image.height - inset.height + 1))
    canvas.paste(inset, (left, top))
    return canvas


def collage_cells(size: tuple[int, int]) -> tuple[list[Box], int]:
    """The four cells of a 2x2 collage of `size` (row by row) and the white gutter around them."""
    width, height = size
    gutter = max(2, round(0.01 * min(width, height)))
    cell_w, cell_h = (width - 3 * gutter) // 2, (height - 3 * gutter) // 2
    cells = [
        (x, y, x + cell_w, y + cell_h)
        for y in (gutter, 2 * gutter + cell_h)
        for x in (gutter, 2 * gutter + cell_w)
    ]
    return cells, gutter


def collage(image: Image.Image, seed: int, donors: Sequence[Image.Image]) -> Image.Image:
    """A 2x2 collage the photo's size: the photo in one cell (drawn at random), three other
    photos (the donors, each cut to the cell's aspect) in the others, white gutters between."""
    canvas = Image.new("RGB", image.size, (255, 255, 255))
    cells, _ = collage_cells(image.size)
    place = collage_place(seed)
    others = iter(donors)
    for index, (left, top, right, bottom) in enumerate(cells):
        size = (right - left, bottom - top)
        if index == place:
            canvas.paste(image.resize(size, Image.Resampling.LANCZOS), (left, top))
        else:
            canvas.paste(ImageOps.fit(next(others), size, Image.Resampling.BICUBIC), (left, top))
    return canvas


def collage_place(seed: int) -> int:
    """Which cell (row by row) `collage` gives the photo for `seed`."""
    return int(np.random.default_rng(seed).integers(4))
