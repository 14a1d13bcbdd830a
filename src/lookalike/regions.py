"""Region proposals: the rectangular pictures inside a composite (a collage's cells, the photo in
a screenshot, a picture pasted into another).

A photo pasted into something else keeps straight borders: along each of its four sides the
brightness steps from what is around it. Local features cannot find such a copy when it is
small (a screenshot's photo at a third of the frame's width falls below ORB's pyramid at the
working size) and global hashes see the whole; cut out, the sub-picture hashes like its original.

The rule works on a colour thumbnail (`ANALYSIS_SIDE` on its longer side): sharp steps between
neighbouring columns (in any channel: a pasted photo and what surrounds it often have the same
brightness along part of a side, but seldom the same colour), long vertical runs of them as
candidate sides, pairs of such sides sharing rows, closed above and below by rows
that step along the whole width. A rectangle is kept when each of its four sides steps along
`MIN_SUPPORT` of its length, it is neither tiny nor most of the frame, and it holds a picture
rather than a flat panel (a chat bubble, a text box: `MAX_FLAT`). Rectangles no stepping line
divides come first: a collage's cells before two cells together. Before them all come the cells
of a collage cut at its gutters (`lookalike.gutters`) and the solid pieces standing out of a
page's one colour (`lookalike.pages`: a photo on a web page or in a chat), which need no step
along their sides. A flat box is still a picture when what stands out of its one level is one
object spread over it (a product shot on white, a nebula on black: `one_object`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt
from PIL import Image
from scipy import ndimage

from lookalike.gutters import Box, common_level, gutter_cells
from lookalike.pages import page_pieces

RelativeBox = tuple[float, float, float, float]  # the same as shares of the image's width and height
REGION_BOXES = "region-boxes"  # what an ImageView memoises the proposals under

REGIONS_REVISION = 8  # raised whenever the rule changes what it proposes (8: pieces standing out of a page)
ANALYSIS_SIDE = 256
STEP = 20.0  # levels, in the channel that differs most, between the two pixels either side of a border
GAP = 2  # a run of steps bridges gaps this long (where both sides of a border happen to agree)
MIN_SIDE_SHARE = 0.12  # a region's sides are at least this share of the image's shorter side
MIN_AREA, MAX_AREA = 0.03, 0.80  # share of the image's area
MIN_SUPPORT = 0.80  # share of each side's length that steps
MAX_FLAT = 0.65  # share of the region's pixels at its most common level (a panel, not a picture) ...
OBJECT_CONTRAST = 9.0  # ... unless what differs from that level by this much (grey levels) ...
OBJECT_SHARE = 0.6  # ... is mostly one piece ...
OBJECT_SPAN = 0.4  # ... spanning this share of the box's width and height (one object, not text)
MAX_ASPECT = 4.0
MAX_REGIONS = 6
MAX_FRAME_SIDES = 2  # sides of a region that may be the frame's own edges
SNAP = 2  # rows this close are one border
SAME_PLACE = 0.85  # intersection over union of two proposals that are one
INNER_STEP = 0.35  # a border with a step this strong just inside it is a gutter's outer edge


def propose_regions(pixels: npt.NDArray[np.uint8]) -> list[Box]:
    """Rectangles that look like pictures placed inside `pixels` (8-bit, colour (h, w, channels)
    or grayscale (h, w), any size), in its pixels, undivided ones first, then the larger; none
    for most photos."""
    image = pixels if pixels.ndim == 3 else pixels[:, :, None]
    height, width = image.shape[:2]
    if min(height, width) < 32:
        return []
    scale = min(1.0, ANALYSIS_SIDE / max(height, width))
    planes = _planes(image, scale)  # (channels, h, w): channel maxima over contiguous slabs
    th, tw = planes.shape[1:]
    min_side = max(8, round(MIN_SIDE_SHARE * min(th, tw)))
    # steps between rows y - 1 and y (y = 0..th) and between columns x - 1 and x (x = 0..tw); the
    # frame's own edges count as steps, so a picture pasted against an edge still has four sides
    row_steps = np.ones((th + 1, tw), dtype=bool)
    row_steps[1:-1] = _steps(planes)
    column_steps = np.ones((th, tw + 1), dtype=bool)
    column_steps[:, 1:-1] = _steps(np.ascontiguousarray(planes.transpose(0, 2, 1))).T
    along_x = np.zeros((th + 1, tw + 1), dtype=np.int32)  # prefix sums: any span's share in O(1)
    along_x[:, 1:] = np.cumsum(row_steps, axis=1)
    along_y = np.zeros((th + 1, tw + 1), dtype=np.int32)
    along_y[1:] = np.cumsum(column_steps, axis=0)
    segments = _runs(column_steps.T, min_side)
    pairs = np.array(sorted(_side_pairs(segments, min_side, tw)), dtype=np.int64).reshape(-1, 2)
    # pieces standing out from a page's one colour first: their sides need not step
    boxes = [(0, box) for box in page_pieces(planes)] + _closed_boxes(along_x, along_y, pairs, min_side)
    inverse = 1.0 / scale
    found = gutter_cells(image)  # a collage's cells, cut at its gutters, come first
    for left, top, right, bottom in _distinct(boxes, planes.mean(axis=0)):
        box = (round(left * inverse), round(top * inverse), round(right * inverse), round(bottom * inverse))
        box = _refined(image, box, int(np.ceil(2 * inverse)))
        if len(found) < MAX_REGIONS and all(overlap(box, cell) <= SAME_PLACE for cell in found):
            found.append(box)
    return found[:MAX_REGIONS]


def _refined(image: npt.NDArray[np.uint8], box: Box, reach: int) -> Box:
    """The box with each side moved (by up to `reach` pixels) to where the full-size image steps
    most along it: the thumbnail blurs a border over a pixel or two, and a strip of a collage's
    white gutter left on a side changes a hash by tens of bits."""
    height, width = image.shape[:2]
    left, top, right, bottom = (
        min(max(v, 0), limit) for v, limit in zip(box, (width, height, width, height), strict=True)
    )

    def best(at: int, limit: int, steps_over: Callable[[int, int], dict[int, float]], inward: int) -> int:
        """The border near `at`: a strong step with no other strong step just inside it (a
        gutter's far edge is a step too, with the gutter's near edge right behind it)."""
        steps = steps_over(max(1, at - 2 * reach), min(limit - 1, at + 2 * reach))
        if at in (0, limit):  # the frame's own edge, unless a border lies just inside it (a gutter)
            steps[at] = STEP

        def score(place: int) -> tuple[bool, float, int]:
            inside = max(steps.get(place + inward * k, 0.0) for k in range(1, reach + 1))
            return inside < INNER_STEP * steps[place], steps[place], -abs(place - at)

        return max((p for p in steps if abs(p - at) <= reach), key=score)

    def column_steps(first: int, last: int) -> dict[int, float]:
        """Mean step (channel maximum) between columns x - 1 and x over the box's rows, x = first..last."""
        strip = image[top:bottom, first - 1 : last + 1].astype(np.int16)
        means = np.abs(np.diff(strip, axis=1)).max(axis=2).mean(axis=0)
        return dict(zip(range(first, last + 1), means.tolist(), strict=True))

    def row_steps(first: int, last: int) -> dict[int, float]:
        """Mean step (channel maximum) between rows y - 1 and y over the box's columns, y = first..last."""
        strip = image[first - 1 : last + 1, left:right].astype(np.int16)
        means = np.abs(np.diff(strip, axis=0)).max(axis=2).mean(axis=1)
        return dict(zip(range(first, last + 1), means.tolist(), strict=True))

    left, right = best(left, width, column_steps, 1), best(right, width, column_steps, -1)
    top, bottom = best(top, height, row_steps, 1), best(bottom, height, row_steps, -1)
    return left, top, right, bottom


def _runs(lines: npt.NDArray[np.bool_], min_length: int) -> npt.NDArray[np.int64]:
    """(line, start, stop) of every run of True along axis 1 at least `min_length` long, gaps of
    up to GAP bridged."""
    closed = lines.copy()
    width = lines.shape[1]
    for before in range(1, GAP + 1):  # a gap pixel with a step `before` to its left ...
        for after in range(1, GAP + 2 - before):  # ... and one `after` to its right, gap <= GAP
            closed[:, before : width - after] |= (
                lines[:, : width - after - before] & lines[:, before + after :]
            )
    padded = np.zeros((closed.shape[0], closed.shape[1] + 2), dtype=np.int8)
    padded[:, 1:-1] = closed
    change = np.diff(padded, axis=1)
    starts = np.argwhere(change == 1)
    stops = np.argwhere(change == -1)  # the same lines, in the same order
    length = stops[:, 1] - starts[:, 1]
    keep = length >= min_length
    return np.column_stack([starts[keep, 0], starts[keep, 1], stops[keep, 1]]).astype(np.int64)


def _side_pairs(segments: npt.NDArray[np.int64], min_side: int, width: int) -> set[tuple[int, int]]:
    """(left, right) columns of vertical runs that could be a rectangle's two sides: far enough
    apart, sharing at least `min_side` rows. A side whose picture matches what lies beside it for
    a stretch steps in two runs, so the runs need not span the same rows; whether each side steps
    along the rectangle is `_boxes_between`'s to judge. The frame's edges (columns 0 and `width`)
    step on every row, so a run pairs with one only when it spans about the same rows itself."""
    if len(segments) < 2:
        return set()
    x, y0, y1 = segments[:, 0], segments[:, 1], segments[:, 2]
    apart = (x[None, :] - x[:, None]) >= min_side
    shared = np.minimum(y1[:, None], y1[None, :]) - np.maximum(y0[:, None], y0[None, :])
    length = y1 - y0
    tolerance = np.maximum(3, 0.25 * np.minimum(length[:, None], length[None, :]))
    alike = (np.abs(y0[:, None] - y0[None, :]) <= tolerance) & (
        np.abs(y1[:, None] - y1[None, :]) <= tolerance
    )
    edge = (x == 0) | (x == width)
    loose = ~edge[:, None] & ~edge[None, :]
    first, second = np.nonzero(apart & np.where(loose, shared >= min_side, alike))
    return set(zip(x[first].tolist(), x[second].tolist(), strict=True))


def _closed_boxes(
    along_x: npt.NDArray[np.int32],
    along_y: npt.NDArray[np.int32],
    pairs: npt.NDArray[np.int64],
    min_side: int,
) -> list[tuple[int, Box]]:
    """The rectangles between every pair of candidate sides (left, right): (1 when no line
    divides it, else 2; box). The rows stepping along each pair's width are found for all pairs
    at once."""
    if not len(pairs):
        return []
    shares = (along_x[:, pairs[:, 1]] - along_x[:, pairs[:, 0]]) / (pairs[:, 1] - pairs[:, 0])
    shares[[0, -1]] = MIN_SUPPORT  # the frame's edges qualify, but a real border beside them wins
    closing = shares >= MIN_SUPPORT
    crossed = closing[1:-1].any(axis=0)  # a rectangle needs at least one real border row across
    pairs, shares = pairs[crossed], shares[:, crossed].T
    if not len(pairs):
        return []
    which, rows = np.nonzero(shares >= MIN_SUPPORT)  # by pair, then by row
    bounds = [0, *(np.flatnonzero(np.diff(which)) + 1).tolist(), len(rows)]
    all_rows, all_shares = rows.tolist(), shares[which, rows].tolist()
    found: list[tuple[int, Box]] = []
    for (left, right), start, stop in zip(pairs.tolist(), bounds[:-1], bounds[1:], strict=True):
        found += _boxes_between(along_y, left, right, all_rows[start:stop], all_shares[start:stop], min_side)
    return found


def _boxes_between(
    along_y: npt.NDArray[np.int32], left: int, right: int, rows: list[int], shares: list[float], min_side: int
) -> list[tuple[int, Box]]:
    """Rectangles spanning columns [left, right), closed by `rows` (those stepping along that width,
    with their `shares` of it) and by columns `left` and `right` stepping between those rows."""
    borders: list[int] = []  # neighbouring rows are one border, at its strongest row
    strongest = -1.0
    for index, (row, share) in enumerate(zip(rows, shares, strict=True)):
        if index == 0 or row - rows[index - 1] > SNAP:
            borders.append(row)
            strongest = share
        elif share > strongest:
            borders[-1], strongest = row, share
    found: list[tuple[int, Box]] = []
    left_steps, right_steps = along_y[:, left].tolist(), along_y[:, right].tolist()
    for i, top in enumerate(borders):
        for bottom in borders[i + 1 :]:
            height = bottom - top
            if height < min_side:
                continue
            needed = MIN_SUPPORT * height
            left_share = left_steps[bottom] - left_steps[top]
            if left_share < needed or right_steps[bottom] - right_steps[top] < needed:
                continue
            inner = (
                along_y[bottom, left + SNAP + 1 : right - SNAP] - along_y[top, left + SNAP + 1 : right - SNAP]
            )
            divided = bool(len(inner) and inner.max() / height >= MIN_SUPPORT)
            divided |= any(top + SNAP < other < bottom - SNAP for other in borders)
            found.append((1 + divided, (left, top, right, bottom)))
    return found


def _distinct(boxes: list[tuple[int, Box]], thumb: npt.NDArray[np.float32]) -> list[Box]:
    """Plausible pictures among the rectangles (doubt, box), one per place: the least doubtful
    first (0: a piece standing out of a page, 1: undivided, 2: divided), then the larger."""
    height, width = thumb.shape
    area = float(height * width)
    kept: list[Box] = []

    def rank(found: tuple[int, Box]) -> tuple[int, int, int, Box]:
        doubt, (left, top, right, bottom) = found
        frame_sides = (left == 0) + (top == 0) + (right == width) + (bottom == height)
        return doubt, frame_sides, -(right - left) * (bottom - top), found[1]

    ranked = sorted(set(boxes), key=rank)
    for _, box in ranked:
        left, top, right, bottom = box
        w, h = right - left, bottom - top
        if not MIN_AREA <= w * h / area <= MAX_AREA or max(w, h) > MAX_ASPECT * min(w, h):
            continue
        if (left == 0) + (top == 0) + (right == width) + (bottom == height) > MAX_FRAME_SIDES:
            continue  # a band cut off by one line (a horizon) is not a picture
        if any(overlap(box, other) > SAME_PLACE for other in kept):
            continue
        patch = thumb[top:bottom, left:right]
        level, share = common_level(patch)
        if share > MAX_FLAT and not one_object(patch, level):
            continue
        kept.append(box)
        if len(kept) == MAX_REGIONS:
            break
    return kept


def _steps(planes: npt.NDArray[np.float32]) -> npt.NDArray[np.bool_]:
    """Where rows y - 1 and y of `planes` (channels, h, w) step apart (y = 1..h-1): by `STEP` in
    some channel between the two, or, for a border the reduction spread over a pixel (it fell
    inside one), by `STEP` between the rows either side of that pixel, counted on its steeper half."""
    near = np.abs(planes[:, 1:] - planes[:, :-1]).max(axis=0)  # (h - 1, w): rows y - 1 and y
    stepped: npt.NDArray[np.bool_] = near >= STEP
    spread = np.abs(planes[:, 2:] - planes[:, :-2]).max(axis=0) >= STEP  # rows y - 1 and y + 1
    stepped[:-1] |= spread & (near[:-1] >= near[1:])
    stepped[1:] |= spread & (near[1:] > near[:-1])
    return stepped


def one_object(pixels: npt.NDArray[np.float32], level: float) -> bool:
    """Whether what stands out from `level` (the most common grey level of `pixels`) is mostly
    one piece spread over the box: a product shot on white, a nebula on a night sky, a picture
    after all. A panel's text is many small marks, each letter or line a piece of its own."""
    marks = np.abs(pixels - level) > OBJECT_CONTRAST
    labels, count = ndimage.label(marks)
    if count == 0:
        return False
    sizes = np.bincount(labels.ravel())[1:]
    largest = int(sizes.argmax()) + 1
    if sizes[largest - 1] < OBJECT_SHARE * int(marks.sum()):
        return False
    rows, columns = np.nonzero(labels == largest)
    height, width = pixels.shape
    return bool(
        rows.max() - rows.min() + 1 >= OBJECT_SPAN * height
        and columns.max() - columns.min() + 1 >= OBJECT_SPAN * width
    )


def overlap(a: Box | RelativeBox, b: Box | RelativeBox) -> float:
    """Intersection over union of two boxes (left, top, right, bottom), in pixels or as shares."""
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    if width <= 0 or height <= 0:
        return 0.0
    inter = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union


def _planes(image: npt.NDArray[np.uint8], scale: float) -> npt.NDArray[np.float32]:
    """The image (h, w, channels) reduced by `scale` with an area filter (borders stay sharp
    steps, noise averages out), as float channel planes (channels, h, w)."""
    if scale < 1:
        height, width = image.shape[:2]
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        source = Image.fromarray(np.ascontiguousarray(image[:, :, 0] if image.shape[2] == 1 else image))
        image = np.asarray(source.resize(size, Image.Resampling.BOX)).reshape(size[1], size[0], -1)
    return np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32)


def relative_boxes(boxes: list[Box], size: tuple[int, int]) -> tuple[RelativeBox, ...]:
    """Boxes in the pixels of an image of `size` (width, height) as shares of it (0..1), so that
    they hold at any scale of that image."""
    width, height = size
    return tuple(
        (round(left / width, 4), round(top / height, 4), round(right / width, 4), round(bottom / height, 4))
        for left, top, right, bottom in boxes
    )
