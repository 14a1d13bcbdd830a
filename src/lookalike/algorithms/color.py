"""Colour hash: the fractions of an image that are black, gray, and faintly or brightly coloured per hue.

ImageHash classifies every pixel from Pillow's `convert("L")` and `convert("HSV")`. Both are
functions of the pixel's RGB value alone, so for large RGB images we classify each of the 2^24
colours once (with Pillow itself, so the table is exact by construction) and then classify the
image with one table lookup per pixel: the same counts as ImageHash, without a full-resolution
HSV image.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import PIL
from PIL import Image

from lookalike import disk_memo
from lookalike.algorithms.registry import Algorithm, register
from lookalike.decode import SCRATCH_MAX_PIXELS, scratch_words
from lookalike.hash import Hash

if TYPE_CHECKING:
    from lookalike.prepare import ImageView

HUE_BINS = 6
BLACK, GRAY = 0, 1
FAINT = 2  # categories 2..7: faint colours by hue bin
BRIGHT = FAINT + HUE_BINS  # categories 8..13: bright colours by hue bin
COLOURED_ON_EDGE = BRIGHT + HUE_BINS  # 14: saturation exactly 170, coloured but in neither bin
CATEGORIES = COLOURED_ON_EDGE + 1

BLACK_BELOW = 256 // 8  # intensity < 32
GRAY_BELOW = 256 // 3  # saturation < 85
FAINT_BELOW = 256 * 2 // 3  # saturation < 170 (and > 170 is bright: 170 itself is neither)

# Images with more pixels than this use the colour table (building it, ~0.4-1 s, the first time on a
# machine); smaller ones use it when it is at hand, else convert to HSV directly until the process
# has classified TABLE_PAYS_OFF_PIXELS that way: the table saves ~10 ns a pixel over HSV (14 vs
# 4.7 ns here), so by then building it would have paid for itself, and it is kept on disk.
TABLE_MIN_PIXELS = 1_500_000
TABLE_PAYS_OFF_PIXELS = 40_000_000


@dataclass(frozen=True)
class ColorCounts:
    """How many pixels fall in each colour category, and how many pixels there are."""

    per_category: tuple[int, ...]  # length CATEGORIES
    total: int

    @property
    def coloured(self) -> int:
        return sum(self.per_category[FAINT:])


@functools.cache
def hue_bin_of() -> npt.NDArray[np.uint8]:
    """Hue byte -> bin 0..5, exactly as numpy.histogram with linspace(0, 255, 7) edges assigns it."""
    edges = np.linspace(0, 255, HUE_BINS + 1)
    bins = [int(np.histogram([hue], bins=edges)[0].argmax()) for hue in range(256)]
    return np.asarray(bins, dtype=np.uint8)


def categorize_by_rules(
    intensity: npt.NDArray[np.uint8], hue: npt.NDArray[np.uint8], saturation: npt.NDArray[np.uint8]
) -> npt.NDArray[np.uint8]:
    """Per-pixel category from Pillow's L, H and S bytes, by ImageHash's rules spelt out."""
    category = np.full(intensity.shape, COLOURED_ON_EDGE, dtype=np.uint8)
    hue_bin = hue_bin_of()[hue]
    faint = saturation < FAINT_BELOW
    bright = saturation > FAINT_BELOW
    category[faint] = FAINT + hue_bin[faint]
    category[bright] = BRIGHT + hue_bin[bright]
    category[saturation < GRAY_BELOW] = GRAY
    category[intensity < BLACK_BELOW] = BLACK
    return category


@functools.cache
def saturation_hue_table() -> npt.NDArray[np.uint8]:
    """Category of a pixel that is not black, indexed by saturation << 8 | hue (64 KB)."""
    saturation = np.repeat(np.arange(256, dtype=np.uint8), 256)
    hue = np.tile(np.arange(256, dtype=np.uint8), 256)
    table = categorize_by_rules(np.full(1 << 16, 255, dtype=np.uint8), hue, saturation)
    table.flags.writeable = False
    return table


def categorize(
    intensity: npt.NDArray[np.uint8], hue: npt.NDArray[np.uint8], saturation: npt.NDArray[np.uint8]
) -> npt.NDArray[np.uint8]:
    """Per-pixel category from Pillow's L, H and S bytes: one lookup, then black by intensity."""
    index = saturation.astype(np.uint16)
    index <<= 8
    index |= hue
    category = saturation_hue_table()[index]
    category[intensity < BLACK_BELOW] = BLACK
    return np.ascontiguousarray(category)


def count_categories(category: npt.NDArray[np.uint8]) -> ColorCounts:
    return count_with_pillow(np.ascontiguousarray(category).ravel())


def color_counts_via_hsv(image: Image.Image, intensity: Image.Image) -> ColorCounts:
    """Counts from Pillow's own HSV conversion of `image` (any mode Pillow converts)."""
    if image.mode == "LAB":  # Pillow cannot go LAB -> HSV directly; ImageHash would fail here
        image = image.convert("RGB")
    hsv = image.convert("HSV")
    hue, saturation, _ = (np.asarray(band) for band in hsv.split())
    return count_categories(categorize(np.asarray(intensity), hue, saturation))


def build_rgb_category_table() -> npt.NDArray[np.uint8]:
    """Category of every RGB colour, indexed by r | g << 8 | b << 16, computed with Pillow (~1 s)."""
    table = np.empty(1 << 24, dtype=np.uint8)
    red_green = np.arange(1 << 16, dtype=np.uint32)
    chunk_blues = 16
    for blue_start in range(0, 256, chunk_blues):
        blues = np.arange(blue_start, blue_start + chunk_blues, dtype=np.uint32)
        codes = (red_green[None, :] | (blues[:, None] << 16)).ravel()
        rgb = np.empty((codes.size, 3), dtype=np.uint8)
        rgb[:, 0] = codes & 0xFF
        rgb[:, 1] = (codes >> 8) & 0xFF
        rgb[:, 2] = codes >> 16
        strip = Image.fromarray(rgb.reshape(chunk_blues * 256, 256, 3), "RGB")
        hue, saturation, _ = (np.asarray(band).ravel() for band in strip.convert("HSV").split())
        intensity = np.asarray(strip.convert("L")).ravel()
        table[codes] = categorize(intensity, hue, saturation)
    return table


# The table depends on Pillow's HSV and L conversions, so it is kept per Pillow version.
TABLE_NAME = f"colour-table-v1-pillow-{PIL.__version__}"
_table: npt.NDArray[np.uint8] | None = None
_looked_on_disk = False


def rgb_category_table() -> npt.NDArray[np.uint8]:
    """The colour table: in memory, else from the cache folder, else built (and kept there)."""
    global _table
    if _table is None and not colour_table_at_hand():
        table = np.asarray(disk_memo.cached_array(TABLE_NAME, build_rgb_category_table), dtype=np.uint8)
        table.flags.writeable = False
        _table = table
    assert _table is not None
    return _table


def colour_table_at_hand() -> bool:
    """Whether the table can be had without building it: loaded already, or kept on disk."""
    global _table, _looked_on_disk
    if _table is None and not _looked_on_disk:
        _looked_on_disk = True
        stored = disk_memo.stored_array(TABLE_NAME)
        if stored is not None and stored.shape == (1 << 24,) and stored.dtype == np.uint8:
            stored.flags.writeable = False
            _table = stored.astype(np.uint8, copy=False)
    return _table is not None


_TABLE_MODES = ("RGB", "RGBA", "RGBX")
_LOOKUP_CHUNK = 1 << 15  # pixels per lookup step: the index buffer stays in L2 cache


class _Scratch(threading.local):
    """A per-thread category buffer reused from image to image (fresh arrays cost page faults)."""

    category: npt.NDArray[np.uint8] | None = None


_scratch = _Scratch()


def _category_buffer(pixels: int) -> npt.NDArray[np.uint8]:
    if pixels > SCRATCH_MAX_PIXELS:
        return np.empty(pixels, dtype=np.uint8)
    if _scratch.category is None or _scratch.category.size < pixels:
        _scratch.category = np.empty(pixels, dtype=np.uint8)
    return _scratch.category[:pixels]


def rgbx_words(image: Image.Image, out: npt.NDArray[np.uint32] | None = None) -> npt.NDArray[np.uint32]:
    """One uint32 per pixel of an RGB/RGBA/RGBX image (r in the low byte), flat.

    Pillow converts straight into NumPy's memory when it can (`convert_into` an image mapped
    onto the array), which skips the two copies `np.asarray(image)` makes: on 12 MP that is
    ~10 ms instead of ~110 ms.
    """
    width, height = image.size
    words = np.empty(width * height, dtype=np.uint32) if out is None else out
    if _convert_into_works():
        target = Image.frombuffer("RGBX", (width, height), words, "raw", "RGBX", 0, 1)
        image.load()
        image.im.convert_into(target.im)
    else:  # pragma: no cover - older Pillow without convert_into
        rgbx = image if image.mode == "RGBX" else image.convert("RGBX")
        words[:] = np.asarray(rgbx).view(np.uint32).ravel()
    if not np.little_endian:  # pragma: no cover - the table is indexed little-endian
        words.byteswap(inplace=True)
    return words


@functools.cache
def _convert_into_works() -> bool:
    """Whether this Pillow writes `convert_into` results through to a mapped NumPy buffer."""
    probe = Image.new("RGB", (2, 1), (1, 2, 3))
    words = np.zeros(2, dtype=np.uint32)
    try:
        target = Image.frombuffer("RGBX", (2, 1), words, "raw", "RGBX", 0, 1)
        probe.im.convert_into(target.im)
    except Exception:
        return False
    expected = 1 | 2 << 8 | 3 << 16
    if not np.little_endian:  # pragma: no cover
        words = words.byteswap()
    return bool(np.all(words & 0x00FFFFFF == expected))


def categories_via_table(
    image: Image.Image, words: npt.NDArray[np.uint32] | None = None
) -> npt.NDArray[np.uint8]:
    """Per-pixel category of an RGB/RGBA/RGBX image by one lookup per pixel in the colour table.

    `words` are the image's pixels as uint32 words if the caller has them (a JPEG decoded
    straight into them); otherwise the image is converted into the thread's scratch words.
    The result is a per-thread scratch buffer: use it before classifying the next image.
    """
    table = rgb_category_table()
    pixels = image.width * image.height
    if words is None:
        words = rgbx_words(image, scratch_words(pixels))
    category = _category_buffer(pixels)
    index = np.empty(min(_LOOKUP_CHUNK, words.size), dtype=np.intp)
    for start in range(0, words.size, _LOOKUP_CHUNK):
        stop = min(start + _LOOKUP_CHUNK, words.size)
        chunk = index[: stop - start]
        np.bitwise_and(words[start:stop], 0x00FFFFFF, out=chunk)  # drop X / alpha
        np.take(table, chunk, out=category[start:stop])
    return category


def count_with_pillow(category: npt.NDArray[np.uint8]) -> ColorCounts:
    """Category counts with Pillow's histogram (a plain C loop, ~3x faster than np.bincount)."""
    flat = Image.frombuffer("L", (category.size, 1), category, "raw", "L", 0, 1)
    return ColorCounts(tuple(flat.histogram()[:CATEGORIES]), int(category.size))


def color_counts_via_table(image: Image.Image, words: npt.NDArray[np.uint32] | None = None) -> ColorCounts:
    """Counts for an RGB/RGBA/RGBX image through the colour table."""
    return count_with_pillow(categories_via_table(image, words))


def color_counts_of_gray(intensity: Image.Image) -> ColorCounts:
    """Counts for a grayscale image: no pixel has saturation, so each is black or gray."""
    histogram = intensity.histogram()
    black = sum(histogram[:BLACK_BELOW])
    per_category = [0] * CATEGORIES
    per_category[BLACK] = black
    per_category[GRAY] = sum(histogram) - black
    return ColorCounts(tuple(per_category), intensity.width * intensity.height)


def color_counts(
    image: Image.Image,
    intensity: Callable[[], Image.Image],
    words: npt.NDArray[np.uint32] | None = None,
) -> ColorCounts:
    """ImageHash's pixel classification for `image`, whose grayscale `intensity()` gives (called
    only where it is read: the colour table needs none) and whose pixels are `words`, when the
    decoder put them there."""
    if image.mode == "L":
        return color_counts_of_gray(intensity())
    if image.mode in _TABLE_MODES and _table_pays(image.width * image.height):
        return color_counts_via_table(image, words)
    return color_counts_via_hsv(image, intensity())


_hsv_pixels = 0  # pixels this process classified through HSV (a rough count: threads may race)


def _table_pays(pixels: int) -> bool:
    """Whether to classify `pixels` RGB pixels through the colour table (see TABLE_MIN_PIXELS)."""
    global _hsv_pixels
    if pixels >= TABLE_MIN_PIXELS or _hsv_pixels >= TABLE_PAYS_OFF_PIXELS or colour_table_at_hand():
        return True
    _hsv_pixels += pixels
    return False


def color_values(counts: ColorCounts, binbits: int) -> list[int]:
    """The 14 quantised fractions, with ImageHash 4.3.2's exact float arithmetic."""
    maxvalue = 2**binbits
    if counts.total == 0:
        return [0] * (2 + 2 * HUE_BINS)
    per = counts.per_category
    values = [
        min(maxvalue - 1, int(per[BLACK] / counts.total * maxvalue)),
        min(maxvalue - 1, int(per[GRAY] / counts.total * maxvalue)),
    ]
    coloured = max(1, counts.coloured)
    for count in per[FAINT : FAINT + 2 * HUE_BINS]:
        values.append(min(maxvalue - 1, int(count * maxvalue * 1.0 / coloured)))
    return values


def color_bits(counts: ColorCounts, binbits: int) -> npt.NDArray[np.bool_]:
    """ImageHash's colorhash bits (its per-value bit pattern, which is not plain binary)."""
    bits = [
        value // (2 ** (binbits - i - 1)) % 2 ** (binbits - i) > 0
        for value in color_values(counts, binbits)
        for i in range(binbits)
    ]
    return np.asarray(bits, dtype=bool)


def _counts(view: ImageView) -> ColorCounts:
    words = view.decoded.words if view.source is view.decoded.image else None
    return view.memo("color-counts", lambda: color_counts(view.source, view.gray_image, words))


def _compute(view: ImageView, binbits: int) -> Hash:
    return Hash.from_bits(color_bits(_counts(view), binbits))


COLORHASH = register(
    Algorithm(
        name="colorhash",
        summary="colour hash: black, gray and 12 hue/saturation fractions, binbits bits each",
        param_name="binbits",
        default_param=3,
        valid_params=lambda b: 1 <= b <= 16,
        nbits=lambda b: 14 * b,
        compute=_compute,
        working_side=lambda b: 128,
        max_distance=lambda b: max(1, round(14 * b * 4 / 42)),
        aliases=("color_hash", "colour_hash"),
    )
)
