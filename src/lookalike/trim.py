"""Trimming of uniform borders (letterbox bars, padding, frames, screenshot chrome) before hashing.

A padded or framed copy of a photo hashes like the photo once the bars are gone. The rule works
on a small grayscale thumbnail, so noise and JPEG ringing do not stop it: peel lines off each side
while at least `FLAT_SHARE` of a line's pixels lie within `TOLERANCE` levels of its median, and
peel narrow bands of mostly flat lines (`BAND_SHARE`: a status bar with a clock and icons) when a
flat line follows them. Content never shrinks below `MIN_KEEP` of either side, and an image that
is flat all over is left whole.

With `smooth=True`, lines without texture are peeled too: bars filled with a blurred enlargement
of the photo (the "blur fill" of phone apps and video letterboxing) are not uniform, but their
mean step between neighbouring pixels is tiny. A line counts as smooth when that step is below
`SMOOTH_ABSOLUTE` grey levels, or below `SMOOTH_RELATIVE` of the median step of the lines in the
middle half of the image (a busy photo's blurred bars are smooth next to it). A smooth sky is
peeled as well, from the photo and from its padded copies alike, so their hashes still agree;
that is why this is a separate hash (`phash_eq_trimmed_smooth`), not the only trim.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import numpy.typing as npt
from PIL import Image

from lookalike.prepare import ImageView

Box = tuple[int, int, int, int]  # left, top, right, bottom (right and bottom exclusive), as PIL

ANALYSIS_SIDE = 192
TOLERANCE = 10
FLAT_SHARE = 0.9
BAND_SHARE = 0.6
MIN_KEEP = 0.1
# Raised whenever the trimming rule changes what it keeps (2: MIN_KEEP 0.2 -> 0.1, so a dim
# photo inside a phone screenshot is still found), so caches of trimmed hashes are not reused.
TRIM_REVISION = 2
# The memo key under which an ImageView keeps its uniform-border trim box, so the pipeline can
# report the content size of an image a hash already trimmed, without trimming again.
TRIM_BOX = "trim-box"
SMOOTH_ABSOLUTE = 1.0
SMOOTH_RELATIVE = 0.2


def flat_share(pixels: npt.NDArray[np.uint8], tolerance: int = TOLERANCE) -> npt.NDArray[np.float64]:
    """For each row of `pixels`, the share of its pixels within `tolerance` of the row's median.

    In integers at twice the scale (a median of an even count ends in .5): a stable sort of 8-bit
    values is a radix sort, several times faster than `np.median`'s partition, same result."""
    width = pixels.shape[1]
    if width == 0:
        return np.full(pixels.shape[0], np.nan)
    ordered = np.sort(pixels, axis=1, kind="stable")
    twice_median = ordered[:, (width - 1) // 2].astype(np.int16) + ordered[:, width // 2]
    twice_values = pixels.astype(np.int16) * 2
    return np.asarray((np.abs(twice_values - twice_median[:, None]) <= 2 * tolerance).mean(axis=1))


def line_texture(pixels: npt.NDArray[np.uint8]) -> npt.NDArray[np.float64]:
    """For each row of `pixels`, the mean absolute step between neighbouring pixels."""
    if pixels.shape[1] < 2:
        return np.zeros(pixels.shape[0])
    return np.asarray(np.abs(np.diff(pixels.astype(np.int16), axis=1)).mean(axis=1))


def peelable_share(
    pixels: npt.NDArray[np.uint8], smooth: bool, tolerance: int = TOLERANCE
) -> npt.NDArray[np.float64]:
    """`flat_share` per row, with rows that lack texture (when `smooth`) counted as fully flat."""
    share = flat_share(pixels, tolerance)
    if not smooth or share.size == 0:
        return share
    texture = line_texture(pixels)
    quarter = texture.size // 4
    reference = float(np.median(texture[quarter : texture.size - quarter]))
    limit = max(SMOOTH_ABSOLUTE, SMOOTH_RELATIVE * reference)
    return np.where(texture < limit, 1.0, share)


def _peel_side(share: npt.NDArray[np.float64], flat: float, band: float, max_band: int) -> int:
    """How many lines to peel from the start of `share`: flat lines, and bands of up to `max_band`
    mostly-flat lines (a status bar with a clock and icons) that end on a flat line."""
    position = 0
    size = share.size
    while position < size:
        if share[position] >= flat:
            position += 1
            continue
        end = position
        while end < size and end - position < max_band and band <= share[end] < flat:
            end += 1
        if end < size and end > position and share[end] >= flat:
            position = end
            continue
        break
    return position


def _peel(share: npt.NDArray[np.float64], flat: float, limit: int) -> tuple[int, int]:
    """Lines to peel from both ends, together at most `limit` (else nothing: a flat picture)."""
    max_band = max(1, share.size // 8)
    lead = _peel_side(share, flat, BAND_SHARE, max_band)
    trail = _peel_side(share[::-1], flat, BAND_SHARE, max_band)
    if lead + trail > limit:
        return 0, 0
    return lead, trail


def content_box(
    pixels: npt.NDArray[np.uint8],
    tolerance: int = TOLERANCE,
    flat: float = FLAT_SHARE,
    min_keep: float = MIN_KEEP,
    smooth: bool = False,
) -> Box:
    """The box left after peeling uniform (or, with `smooth`, textureless) rows and columns off a
    grayscale image's four sides."""
    height, width = pixels.shape
    rows_limit, columns_limit = int(height * (1 - min_keep)), int(width * (1 - min_keep))
    top, bottom = _peel(peelable_share(pixels, smooth, tolerance), flat, rows_limit)
    left, right = 0, 0
    if top + bottom < height:
        inner = pixels[top : height - bottom]
        left, right = _peel(peelable_share(inner.T, smooth, tolerance), flat, columns_limit)
        if left or right:  # columns gone may reveal more flat rows (a frame inside a frame)
            rows = peelable_share(pixels[:, left : width - right], smooth, tolerance)
            top, bottom = _peel(rows, flat, rows_limit)
    return left, top, width - right, height - bottom


def trim_box(image: Image.Image, smooth: bool = False) -> Box:
    """The box of `image` left without its uniform borders (with `smooth`, also its textureless
    ones, such as blurred bars); the whole image's box when it has none."""
    width, height = image.size
    factor = max(1, max(width, height) // ANALYSIS_SIDE)
    gray = image.convert("L") if image.mode != "L" else image
    small = gray.reduce(factor) if factor > 1 else gray
    left, top, right, bottom = content_box(np.asarray(small), smooth=smooth)
    small_w, small_h = small.size
    if (left, top, right, bottom) == (0, 0, small_w, small_h):
        return 0, 0, width, height
    scale_x, scale_y = width / small_w, height / small_h
    return (
        round(left * scale_x),
        round(top * scale_y),
        max(round(left * scale_x) + 1, round(right * scale_x)),
        max(round(top * scale_y) + 1, round(bottom * scale_y)),
    )


def trim_borders(image: Image.Image, smooth: bool = False) -> Image.Image:
    """`image` without its uniform borders (with `smooth`, also its textureless ones, such as
    blurred bars); the image itself when it has none."""
    box = trim_box(image, smooth)
    return image if box == (0, 0, *image.size) else image.crop(box)


def trimmed_view(view: ImageView) -> ImageView:
    """The same view of the image without its uniform borders (the pipeline's `trim=True` hook)."""
    trimmed = trim_borders(view.source)
    if trimmed is view.source:
        return view
    return ImageView(replace(view.decoded, image=trimmed), view.mode, working_side=0)
