"""Pictures on a page: what stands out, solid and rectangular, from a page of one colour.

A web page, a chat or a document shows its photos on one flat colour (white, a chat's
wallpaper, a viewer's black). Where a photo's edge has nearly the page's colour (a bright sky on
a white page, a product shot on white), its border does not step and the border rule of
`lookalike.regions` misses a side; but the page itself is exactly one colour, and the photo's
pixels, bright sky included, are not. So: find the page's colour, mark what differs from it by
more than JPEG's noise, fill the holes, and keep the pieces that fill their bounding box (a
photo, a bubble, a bar). Text is many small pieces, so it is never one. Which of the solid
pieces are pictures rather than panels of text is `lookalike.regions`' flat-panel rule's to say.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from lookalike.gutters import Box

PAGE_SHARE = 0.20  # the page's colour covers at least this share of the frame ...
PAGE_BIN = 8  # ... found among the most common colours in bins of this many levels per channel
PAGE_CANDIDATES = 3  # how many of the most common bins are tried
PAGE_TOLERANCE = 6.0  # levels (in the channel that differs most) that still count as the page
MIN_SOLIDITY = 0.80  # share of its bounding box a piece covers, its holes filled: a rectangle
MIN_AREA = 0.015  # share of the frame a piece's bounding box covers at least


def page_pieces(planes: npt.NDArray[np.float32]) -> list[Box]:
    """Bounding boxes (in the pixels of `planes`: channels, h, w) of the solid pieces standing
    out from the page's colour, largest first; none when no colour covers `PAGE_SHARE` of the
    frame (a photo, not a page)."""
    height, width = planes.shape[1:]
    page = _page_colour(planes)
    if page is None:
        return []
    standing_out = np.abs(planes - page[:, None, None]).max(axis=0) > PAGE_TOLERANCE
    labels, _ = ndimage.label(ndimage.binary_fill_holes(standing_out))
    boxes: list[tuple[int, Box]] = []
    for number, found in enumerate(ndimage.find_objects(labels), start=1):
        if found is None:
            continue
        rows, columns = found
        box = (columns.start, rows.start, columns.stop, rows.stop)
        area = (box[2] - box[0]) * (box[3] - box[1])
        if area < MIN_AREA * height * width:
            continue
        if np.count_nonzero(labels[found] == number) < MIN_SOLIDITY * area:
            continue
        boxes.append((area, box))
    return [box for _, box in sorted(boxes, key=lambda item: -item[0])]


def _page_colour(planes: npt.NDArray[np.float32]) -> npt.NDArray[np.float32] | None:
    """The colour (one value per channel) that `PAGE_SHARE` of the pixels lie within
    `PAGE_TOLERANCE` of, if any: of the few most common colours (in bins of `PAGE_BIN` levels),
    the one most pixels are near (a white page straddles two bins; a dark photo on it may fill
    more of one bin than the page)."""
    channels = planes.shape[0]
    pixels = planes.reshape(channels, -1)
    codes = np.zeros(pixels.shape[1], dtype=np.int64)
    for channel in np.clip(pixels, 0, 255).astype(np.int64) // PAGE_BIN:
        codes = codes * (256 // PAGE_BIN) + channel
    counts = np.bincount(codes)
    best, best_share = None, PAGE_SHARE
    for code in np.argsort(counts)[::-1][:PAGE_CANDIDATES].tolist():
        colour = pixels[:, codes == code].mean(axis=1)
        share = float(np.count_nonzero(np.abs(pixels - colour[:, None]).max(axis=0) <= PAGE_TOLERANCE))
        if share >= best_share * pixels.shape[1]:
            best, best_share = colour, share / pixels.shape[1]
    return best
