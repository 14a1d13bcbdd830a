"""Crop-resistant hash: one dHash per bright or dark segment of the image (ImageHash's algorithm).

The segmentation follows "Efficient Cropping-Resistant Robust Image Hashing" (DOI
10.1109/ARES.2014.85) as ImageHash implements it: blur a 300x300 grayscale thumbnail, split it
into 4-connected regions above and below a brightness threshold, keep the large ones, and hash
each region's bounding box in the full image. ImageHash grows regions pixel by pixel in Python;
here `scipy.ndimage.label` finds the same regions, visited in the same order, with the same
bookkeeping quirks (see `find_segments`), so the segments and hashes are bit-identical.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageFilter
from scipy import ndimage

from lookalike.algorithms.difference import difference_bits
from lookalike.algorithms.registry import Algorithm, register
from lookalike.hash import Hash, MultiHash

if TYPE_CHECKING:
    from lookalike.prepare import ImageView

SEGMENT_THRESHOLD = 128
MIN_SEGMENT_SIZE = 500
SEGMENTATION_IMAGE_SIZE = 300

_FOUR_CONNECTED = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], dtype=bool)

H = TypeVar("H")


@dataclass(frozen=True)
class Segment:
    """A region of the segmentation thumbnail: its pixel count and inclusive bounding box.

    Like ImageHash's segments (sets of (row, col) pixels) it has a length and iterates over its
    pixels, which are only materialised when asked for.
    """

    size: int
    min_row: int
    min_col: int
    max_row: int
    max_col: int
    labels: npt.NDArray[np.int32] | None = field(default=None, compare=False, repr=False)
    label: int = 0

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[tuple[int, int]]:
        if self.labels is None:
            raise ValueError("this segment was built from a bounding box; it has no pixel list")
        rows, cols = np.nonzero(self.labels == self.label)
        return zip(rows.tolist(), cols.tolist(), strict=True)


def segmentation_pixels(gray: Image.Image, size: int = SEGMENTATION_IMAGE_SIZE) -> npt.NDArray[np.float32]:
    """The blurred thumbnail ImageHash segments: LANCZOS resize, Gaussian blur, median filter."""
    thumbnail = gray.resize((size, size), Image.Resampling.LANCZOS)
    filtered = thumbnail.filter(ImageFilter.GaussianBlur()).filter(ImageFilter.MedianFilter())
    return np.asarray(filtered).astype(np.float32)


def _components(mask: npt.NDArray[np.bool_]) -> list[Segment]:
    """4-connected components of `mask`, ordered by their first pixel in row-major order."""
    labels, count = ndimage.label(mask, structure=_FOUR_CONNECTED)
    if count == 0:
        return []
    sizes = np.bincount(labels.ravel(), minlength=count + 1)
    boxes = ndimage.find_objects(labels)
    # ndimage numbers labels by first appearance in a raster scan, which is the order in which
    # ImageHash's loop picks its next seed pixel.
    return [
        Segment(
            int(sizes[i + 1]), box[0].start, box[1].start, box[0].stop - 1, box[1].stop - 1, labels, i + 1
        )
        for i, box in enumerate(boxes)
        if box is not None
    ]


def find_segments(
    pixels: npt.NDArray[np.float32],
    segment_threshold: float = SEGMENT_THRESHOLD,
    min_segment_size: int = MIN_SEGMENT_SIZE,
) -> list[Segment]:
    """ImageHash's `_find_all_segments`, returning each kept segment's size and bounding box.

    Two quirks of the original decide which segments exist, and are reproduced on purpose:
    its bookkeeping set starts with the 2*(rows+cols) pixels around the border, and a region of a
    single pixel is never added to it, so the search for dark regions stops once that count
    reaches rows*cols, possibly before the last dark regions are visited.
    """
    rows, cols = pixels.shape
    bright = pixels > segment_threshold
    counted = 2 * (rows + cols)
    kept: list[Segment] = []
    for segment in _components(bright):
        if segment.size > min_segment_size:
            kept.append(segment)
        if segment.size > 1:
            counted += segment.size
    for segment in _components(~bright):
        if counted >= rows * cols:
            break
        if segment.size > min_segment_size:
            kept.append(segment)
        if segment.size > 1:
            counted += segment.size
    return kept


def crop_boxes(
    segments: list[Segment],
    image_size: tuple[int, int],
    segmentation_size: int = SEGMENTATION_IMAGE_SIZE,
    limit_segments: int | None = None,
) -> list[tuple[float, float, float, float]]:
    """Bounding boxes in full-image coordinates (as floats, as ImageHash passes them to crop)."""
    if not segments:
        last = segmentation_size - 1
        segments = [Segment(2, 0, 0, last, last)]
    if limit_segments:
        segments = sorted(segments, key=lambda s: s.size, reverse=True)[:limit_segments]
    width, height = image_size
    scale_w = float(width) / segmentation_size
    scale_h = float(height) / segmentation_size
    return [
        (s.min_col * scale_w, s.min_row * scale_h, (s.max_col + 1) * scale_w, (s.max_row + 1) * scale_h)
        for s in segments
    ]


def hash_segments(
    image: Image.Image,
    boxes: list[tuple[float, float, float, float]],
    hash_function: Callable[[Image.Image], H],
) -> list[H]:
    """Hash each box of `image`; boxes that round to no pixels are skipped, and if all do, the
    whole image is hashed instead (newer ImageHash does the same; 4.3.2 raised)."""
    hashes = []
    for box in boxes:
        crop = image.crop(box)
        if crop.width == 0 or crop.height == 0:
            continue
        hashes.append(hash_function(crop))
    if not hashes:
        hashes.append(hash_function(image))
    return hashes


def _segment_dhash(hash_size: int) -> Callable[[Image.Image], Hash]:
    def dhash_of(gray_crop: Image.Image) -> Hash:
        pixels = np.asarray(gray_crop.resize((hash_size + 1, hash_size), Image.Resampling.LANCZOS))
        return Hash.from_bits(difference_bits(pixels))

    return dhash_of


def _compute(view: ImageView, hash_size: int) -> MultiHash:
    # Grayscale conversion is per pixel, so cropping the grayscale image equals converting the crop.
    gray = view.gray_image()
    segments = find_segments(segmentation_pixels(gray))
    boxes = crop_boxes(segments, gray.size)
    return MultiHash(hash_segments(gray, boxes, _segment_dhash(hash_size)))


CROP_RESISTANT = register(
    Algorithm(
        name="crop_resistant",
        summary="crop-resistant hash: a dHash per bright/dark segment; matches if any segment matches",
        param_name="hash_size",
        default_param=8,
        valid_params=lambda n: 2 <= n <= 64,
        nbits=lambda n: n * n,
        compute=_compute,
        working_side=lambda n: 512,
        max_distance=lambda n: max(1, n * n // 4),
        multi=True,
        aliases=("crop_resistant_hash",),
    )
)
