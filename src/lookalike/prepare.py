"""One decoded image and the derived pixels that hash algorithms ask for, each computed once.

Exact mode mirrors ImageHash's Pillow calls (`convert("L")` from the image's own mode, then one
LANCZOS resize per size), so every hash is bit-identical. Fast mode first normalises the image to
8-bit L or RGB (16-bit and float images are scaled, not clipped as Pillow's convert does) and
box-reduces it to the smallest working size the requested algorithms need; every later step reads
from that small image.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, TypeVar

import numpy as np
import numpy.typing as npt
from PIL import Image

from lookalike.decode import DecodedImage

Mode = Literal["fast", "exact"]
MODES: tuple[Mode, ...] = ("fast", "exact")

T = TypeVar("T")

_EIGHT_BIT_MODES = {"L", "RGB"}
_HIGH_BIT_MODES = {"I;16", "I;16L", "I;16B", "I;16N", "I", "F"}
_GRAY_MODES = {"1", "LA", "La"}
# Pixels converted to 8 bits at a time: float64 temporaries of a band stay around 2 MB, whatever
# the image's size, so a 16-bit or float image never costs 8 bytes a pixel at full size.
BAND_PIXELS = 1 << 18


def convert_to_gray(image: Image.Image) -> Image.Image:
    """Pillow's own grayscale conversion (ITU-R 601-2 luma), falling back via RGB for exotic modes."""
    if image.mode == "L":
        return image
    try:
        return image.convert("L")
    except ValueError:
        return image.convert("RGB").convert("L")


def normalise_to_8bit(image: Image.Image) -> Image.Image:
    """L or RGB with 8-bit samples; high-bit-depth images are scaled into 0..255 rather than clipped."""
    return reduce_to_8bit(image, 1)


def reduce_to_8bit(image: Image.Image, factor: int) -> Image.Image:
    """`normalise_to_8bit(image).reduce(factor)`, made band by band without the full-size 8-bit
    image: each band of rows (a multiple of `factor` tall) is converted in its own type and
    box-reduced, so memory beyond the decoded image stays at a few MB plus the reduced result.
    Every conversion is per pixel and a box never crosses a band, so the result is the same."""
    if image.mode in _EIGHT_BIT_MODES:
        return image.reduce(factor) if factor >= 2 else image
    to_8bit = _eight_bit_converter(image)
    factor = max(1, factor)
    width, height = image.size
    rows = max(factor, BAND_PIXELS // max(width, 1) // factor * factor)
    reduced: Image.Image | None = None
    for top in range(0, height, rows):
        band = to_8bit(image.crop((0, top, width, min(height, top + rows))))
        if factor > 1:
            band = band.reduce(factor)
        if reduced is None:
            reduced = Image.new(band.mode, (-(-width // factor), -(-height // factor)))
        reduced.paste(band, (0, top // factor))
    assert reduced is not None  # an image has at least one row
    return reduced


def _eight_bit_converter(image: Image.Image) -> Callable[[Image.Image], Image.Image]:
    """The per-pixel conversion of `image`'s mode to 8-bit L or RGB (as Pillow or our scaling does it)."""
    mode = image.mode
    if mode in _HIGH_BIT_MODES:
        offset, scale = _high_bit_scaling(image)

        def scaled(band: Image.Image) -> Image.Image:
            return Image.fromarray(_scale_to_uint8(np.asarray(band, dtype=np.float64), offset, scale), "L")

        return scaled
    if mode in _GRAY_MODES:
        return convert_to_gray
    try:
        image.crop((0, 0, 1, 1)).convert("RGB")
    except ValueError:
        return convert_to_gray
    return _to_rgb


def _to_rgb(band: Image.Image) -> Image.Image:
    return band.convert("RGB")


def _high_bit_scaling(image: Image.Image) -> tuple[float, float]:
    """(offset, scale) taking a 16-bit, 32-bit or float image into 0..255: values already in 0..1
    (float) or 0..255 or 0..65535 keep their meaning; any other range is stretched. The finite
    minimum and maximum are found band by band, in the image's own type."""
    width, height = image.size
    rows = max(1, BAND_PIXELS // max(width, 1))
    bottom = top = None
    for start in range(0, height, rows):
        values = np.asarray(image.crop((0, start, width, min(height, start + rows))))
        if values.dtype.kind == "f":
            values = values[np.isfinite(values)]
        if values.size:
            low, high = float(values.min()), float(values.max())
            bottom = low if bottom is None else min(bottom, low)
            top = high if top is None else max(top, high)
    bottom, top = bottom or 0.0, top or 0.0
    if image.mode == "F" and bottom >= 0.0 and top <= 1.0:
        return 0.0, 255.0
    if top <= 255.0 and bottom >= 0.0:
        return 0.0, 1.0
    if bottom >= 0.0 and top <= 65535.0:
        return 0.0, 255.0 / 65535.0
    return bottom, 255.0 / max(top - bottom, 1e-12)


def _scale_to_uint8(values: npt.NDArray[np.float64], offset: float, scale: float) -> npt.NDArray[np.uint8]:
    scaled = np.nan_to_num((values - offset) * scale, nan=0.0, posinf=255.0, neginf=0.0)
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


class ImageView:
    """Lazy, memoised access to the pixels every algorithm needs from one decoded image."""

    def __init__(
        self,
        decoded: DecodedImage,
        mode: Mode = "exact",
        working_side: int = 0,
        pixels: Image.Image | None = None,
    ) -> None:
        self.decoded = decoded
        self.mode: Mode = mode
        self.working_side = working_side
        self._memo: dict[object, object] = {}
        if mode == "exact":
            self.source = decoded.image
            self._pixels = decoded.image
        else:
            self._pixels = pixels if pixels is not None else _reducible(decoded.image)
            self.source = reduce_to_8bit(self._pixels, _reduction_factor(self._pixels, working_side))

    def for_side(self, working_side: int) -> ImageView:
        """In fast mode, the view an algorithm that needs less resolution than the largest requested
        reads: the decoded image box-reduced once, straight to its own working side (memoised).
        In exact mode, or when it would not shrink the image, self."""
        if self.exact or min(self.source.size) // max(1, working_side) < 2:
            return self

        def reduced() -> ImageView:
            return ImageView(self.decoded, self.mode, working_side, self._pixels)

        return self.memo(("view", working_side), reduced)

    @property
    def exact(self) -> bool:
        return self.mode == "exact"

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the image the algorithms see."""
        return self.source.size

    def memo(self, key: object, factory: Callable[[], T]) -> T:
        """Compute `factory()` once per view and key."""
        if key not in self._memo:
            self._memo[key] = factory()
        return self._memo[key]  # type: ignore[return-value]

    def memoised(self, key: object) -> object | None:
        """What `memo` computed under `key`, or None if nothing has asked for it."""
        return self._memo.get(key)

    def gray_image(self) -> Image.Image:
        """The whole image in mode L, converted once."""
        return self.memo("gray", lambda: convert_to_gray(self.source))

    def gray(self, width: int, height: int) -> npt.NDArray[np.uint8]:
        """Grayscale resized to width x height with LANCZOS, as ImageHash resizes (read-only)."""

        def resize() -> npt.NDArray[np.uint8]:
            resized = self.gray_image().resize((width, height), Image.Resampling.LANCZOS)
            pixels = np.asarray(resized)
            pixels.flags.writeable = False
            return pixels

        return self.memo(("gray", width, height), resize)

    def rgb_image(self) -> Image.Image:
        """The whole image in mode RGB, converted once."""

        def convert() -> Image.Image:
            if self.source.mode == "RGB":
                return self.source
            try:
                return self.source.convert("RGB")
            except ValueError:
                return convert_to_gray(self.source).convert("RGB")

        return self.memo("rgb", convert)


def _reducible(image: Image.Image) -> Image.Image:
    """What fast-mode views reduce from: the image converted to 8 bits once, where that takes no
    more memory than the decoded image (16-bit, 32-bit and float images, 1-bit, LA), else the
    decoded image itself (palette, RGBA, CMYK: each view converts it band by band)."""
    if image.mode in _HIGH_BIT_MODES or image.mode in _GRAY_MODES:
        return normalise_to_8bit(image)
    return image


def _reduction_factor(image: Image.Image, working_side: int) -> int:
    """The largest integer box-reduction factor that keeps the shorter side >= working_side (1: none)."""
    if working_side <= 0:
        return 1
    return max(1, min(image.size) // working_side)
