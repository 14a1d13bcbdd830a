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
    mode = image.mode
    if mode in _EIGHT_BIT_MODES:
        return image
    if mode.startswith("I;16") or mode in ("I", "F"):
        values = np.asarray(image, dtype=np.float64)
        return Image.fromarray(_scale_to_uint8(values, mode), "L")
    if mode in ("1", "L", "LA", "La"):
        return convert_to_gray(image)
    try:
        return image.convert("RGB")
    except ValueError:
        return convert_to_gray(image)


def _scale_to_uint8(values: npt.NDArray[np.float64], mode: str) -> npt.NDArray[np.uint8]:
    finite = values[np.isfinite(values)]
    top = float(finite.max()) if finite.size else 0.0
    bottom = float(finite.min()) if finite.size else 0.0
    if mode == "F" and bottom >= 0.0 and top <= 1.0:
        scale = 255.0
    elif top <= 255.0 and bottom >= 0.0:
        scale = 1.0
    elif bottom >= 0.0 and top <= 65535.0:
        scale = 255.0 / 65535.0
    else:
        values = values - bottom
        scale = 255.0 / max(top - bottom, 1e-12)
    scaled = np.nan_to_num(values * scale, nan=0.0, posinf=255.0, neginf=0.0)
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


class ImageView:
    """Lazy, memoised access to the pixels every algorithm needs from one decoded image."""

    def __init__(
        self,
        decoded: DecodedImage,
        mode: Mode = "exact",
        working_side: int = 0,
        normalised: Image.Image | None = None,
    ) -> None:
        self.decoded = decoded
        self.mode: Mode = mode
        self.working_side = working_side
        self._memo: dict[object, object] = {}
        if mode == "exact":
            self.source = decoded.image
            self._normalised = decoded.image
        else:
            self._normalised = normalised if normalised is not None else normalise_to_8bit(decoded.image)
            self.source = _reduce_to(self._normalised, working_side)

    def for_side(self, working_side: int) -> ImageView:
        """In fast mode, the view an algorithm that needs less resolution than the largest requested
        reads: the decoded image box-reduced once, straight to its own working side (memoised).
        In exact mode, or when it would not shrink the image, self."""
        if self.exact or min(self.source.size) // max(1, working_side) < 2:
            return self

        def reduced() -> ImageView:
            return ImageView(self.decoded, self.mode, working_side, self._normalised)

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


def _reduce_to(image: Image.Image, working_side: int) -> Image.Image:
    """Box-reduce by the largest integer factor that keeps the shorter side >= working_side."""
    if working_side <= 0:
        return image
    factor = min(image.size) // working_side
    if factor < 2:
        return image
    return image.reduce(factor)
