"""The cells of a collage: pictures tiling the frame, cut apart by gutters of one colour.

A collage is laid out by straight cuts from edge to edge (a 2x2 grid: one across, then one down
each half; a big picture beside two small ones: one down, then one across the right part). Each
cut leaves a gutter: a thin band of rows (or columns) of one colour spanning the part it cuts.
Cutting recursively at such bands gives the cells, whatever their borders look like: a bright
photo against a white gutter has no step along its side (the border rule of `lookalike.regions`
misses it), but the gutter is still one colour from edge to edge while the photo's rows are not.

Only a frame that such cuts tile with pictures counts (cells with content covering most of it),
so a photo with a thin uniform band across it (a calm horizon) or a page of text is not cut.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from PIL import Image

Box = tuple[int, int, int, int]  # left, top, right, bottom (right and bottom exclusive), as PIL

ANALYSIS_SIDE = 512  # larger images are reduced first (gutters are 1% or more of a side)
TOLERANCE = 16  # levels from the line's mean that still count as its colour (JPEG noise)
UNIFORM_SHARE = 0.97  # share of a line's pixels within TOLERANCE: a line of one colour
MAX_GUTTER = 0.05  # a gutter is at most this share of the image's shorter side thick
MIN_CELL_SIDE = 0.12  # a cell's sides are at least this share of the image's shorter side
MIN_TILED = 0.80  # the cells, every one a picture, cover at least this share of the frame
MAX_DEPTH = 3  # grids within cells: enough for any layout of up to about eight cells
EDGE_STEP = 20  # levels between a gutter and the pictures' rows beside it ...
EDGE_SHARE = 0.30  # ... along this share of its length on each side
MAX_BACKGROUND = 0.35  # share of a cell at the gutters' level: more is background, not a picture
FLAT_SHARE = 0.65  # a cell with this share of its pixels at one level is a panel, not a picture


def gutter_cells(pixels: npt.NDArray[np.uint8]) -> list[Box]:
    """The cells of a collage in `pixels` (8-bit (h, w, channels) or (h, w)), in its pixels,
    row by row; none when cuts at gutters do not tile the frame with at least two pictures."""
    image = pixels if pixels.ndim == 3 else pixels[:, :, None]
    height, width = image.shape[:2]
    if min(height, width) < 32:
        return []
    scale = min(1.0, ANALYSIS_SIDE / max(height, width))
    if scale < 1:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        source = Image.fromarray(np.ascontiguousarray(image[:, :, 0] if image.shape[2] == 1 else image))
        image = np.asarray(source.resize(size, Image.Resampling.BOX)).reshape(size[1], size[0], -1)
    # one grey plane: a gutter is one colour, so one grey level, and a third of the work
    work = image.mean(axis=2, dtype=np.float32).astype(np.int16)
    shorter = min(work.shape[:2])
    frame = _trimmed(work)
    cells = _grid(work, frame, shorter, 0)
    if len(cells) < 2:
        return []
    area = sum((right - left) * (bottom - top) for left, top, right, bottom in cells)
    if area < MIN_TILED * work.shape[0] * work.shape[1] or any(
        _background_share(work, frame, cells, cell) > MAX_BACKGROUND for cell in cells
    ):
        return []  # not a frame tiled with pictures: an app's panels on its background, padding
    inverse = 1.0 / scale
    return [
        (round(left * inverse), round(top * inverse), round(right * inverse), round(bottom * inverse))
        for left, top, right, bottom in sorted(cells, key=lambda box: (box[1], box[0]))
        if not _flat(work, (left, top, right, bottom))
    ]


def _grid(work: npt.NDArray[np.int16], box: Box, shorter: int, depth: int) -> list[Box]:
    """The cells of `box`: cut at every thin one-colour band spanning it across and every one
    spanning it down (a grid; a gutter of a grid spans the whole, crossing the others), then each
    cell cut again (a layout of cuts within cuts)."""
    left, top, right, bottom = box
    if right - left < MIN_CELL_SIDE * shorter or bottom - top < MIN_CELL_SIDE * shorter:
        return []
    rows = _spans(work[top:bottom, left:right], top, shorter)
    columns = _spans(work[top:bottom, left:right].T, left, shorter)
    if (len(rows) == 1 and len(columns) == 1) or depth == MAX_DEPTH:
        return [box]
    cells = [(a, t, b, u) for t, u in rows for a, b in columns]
    return [leaf for cell in cells for leaf in _grid(work, cell, shorter, depth + 1)]


def _spans(region: npt.NDArray[np.int16], start: int, shorter: int) -> list[tuple[int, int]]:
    """The spans of rows of `region` (h, w) between thin one-colour bands spanning its width,
    offset by `start`. A band beside a span too small to be a cell is no gutter (a thin calm
    strip of a picture): it is dropped and the spans either side join."""
    uniform = _uniform_lines(region)
    bands = [(a, b) for a, b in _runs(uniform) if b - a <= MAX_GUTTER * shorter and _edged(region, a, b)]
    while True:
        edges = [0, *(v for band in bands for v in band), len(uniform)]
        spans = [(edges[i], edges[i + 1]) for i in range(0, len(edges), 2)]
        small = [i for i, (a, b) in enumerate(spans) if b - a < MIN_CELL_SIDE * shorter]
        if not small:
            return [(a + start, b + start) for a, b in spans]
        del bands[min(small[0], len(bands) - 1)]  # the band after the small span, or the last


def _edged(region: npt.NDArray[np.int16], first: int, stop: int) -> bool:
    """Whether the band of rows [first, stop) is cut off from what lies either side: the row
    beside it steps from its level by `EDGE_STEP` along `EDGE_SHARE` of the length, on each side
    (a calm strip of sky fades into its surroundings; a gutter ends at pictures)."""
    level = region[first:stop].mean(dtype=np.float32)
    before = np.abs(region[first - 1] - level) >= EDGE_STEP
    after = np.abs(region[stop] - level) >= EDGE_STEP
    return bool(before.mean() >= EDGE_SHARE and after.mean() >= EDGE_SHARE)


def _uniform_lines(region: npt.NDArray[np.int16]) -> npt.NDArray[np.bool_]:
    """Per row of `region` (h, w): whether it is one level along its whole length."""
    mean = region.mean(axis=1, keepdims=True, dtype=np.float32).astype(np.int16)
    close = np.abs(region - mean) <= TOLERANCE
    share: npt.NDArray[np.float64] = close.mean(axis=1)
    return share >= UNIFORM_SHARE


def _runs(flags: npt.NDArray[np.bool_]) -> list[tuple[int, int]]:
    """(start, stop) of the runs of True that touch neither end: gutters between two parts."""
    padded = np.concatenate([[False], flags, [False]]).astype(np.int8)
    change = np.diff(padded)
    starts, stops = np.flatnonzero(change == 1), np.flatnonzero(change == -1)
    return [(int(a), int(b)) for a, b in zip(starts, stops, strict=True) if a > 0 and b < len(flags)]


def _trimmed(work: npt.NDArray[np.int16]) -> Box:
    """The frame without the one-colour rows and columns along its edges (a collage's margin)."""
    rows = _uniform_lines(work)
    columns = _uniform_lines(work.T)
    if rows.all() or columns.all():
        return (0, 0, 0, 0)  # all one colour: nothing left
    first_row, last_row = np.flatnonzero(~rows)[[0, -1]]
    first_column, last_column = np.flatnonzero(~columns)[[0, -1]]
    return (int(first_column), int(first_row), int(last_column) + 1, int(last_row) + 1)


def _background_share(work: npt.NDArray[np.int16], frame: Box, cells: list[Box], cell: Box) -> float:
    """The share of `cell`'s pixels at the level of the gutters (what no cell covers inside the
    frame): a chat's chunks between bubbles are mostly its background, a photo seldom is."""
    outside = np.zeros(work.shape, dtype=bool)
    outside[frame[1] : frame[3], frame[0] : frame[2]] = True
    for left, top, right, bottom in cells:
        outside[top:bottom, left:right] = False
    if not outside.any():
        return 0.0
    level = float(np.median(work[outside]))
    left, top, right, bottom = cell
    return float((np.abs(work[top:bottom, left:right] - level) <= TOLERANCE).mean())


def _flat(work: npt.NDArray[np.int16], box: Box) -> bool:
    """Whether most of the box's pixels sit at one grey level: a panel or a text box."""
    left, top, right, bottom = box
    return flat_share(work[top:bottom, left:right]) > FLAT_SHARE


def flat_share(pixels: npt.NDArray[np.generic]) -> float:
    """The share of grey pixels within a few levels of the most common level."""
    return common_level(pixels)[1]


def common_level(pixels: npt.NDArray[np.generic]) -> tuple[float, float]:
    """The most common grey level, in bins of 6 levels (the middle of its bin), and the share of
    the pixels in that bin."""
    counts = np.bincount(np.clip(pixels, 0, 255).astype(np.int64).ravel() // 6, minlength=43)
    level = int(counts.argmax())
    return 6 * level + 3.0, float(counts[level]) / max(pixels.size, 1)
