"""What one member of a duplicate group is as a file: how faithful a copy of the picture it holds.

The facts that decide which copy to keep and what the others are: its decoded pixels (a digest
of them at full size, and a copy at most `ANALYSIS_SIDE` pixels on the long side for aligning and
comparing), whether its format is lossless, its JPEG quality (estimated from the quantisation
tables, as IJG's `cjpeg -quality` makes them), whether it carries a camera's EXIF, and a
full-resolution window of its most detailed part, on which `lost_detail` tells an upscaled copy
(no detail beyond its source's resolution) from an original. Reading files happens here only;
the rest of dedupe works on arrays.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from PIL import Image

from lookalike.decode import decode
from lookalike.errors import ImageError
from lookalike.trim import trim_box

ANALYSIS_SIDE = 512  # pixels on the long side of the copy kept for alignment and comparison
WINDOW_SIDE = 256  # the full-resolution window upscaling is judged on
GRID_SIDE = 160  # the full-resolution windows same-size copies are compared on
LOSSLESS_FORMATS = frozenset({"PNG", "BMP", "GIF", "TIFF", "PPM", "QOI", "TGA"})

# IJG's standard luminance quantisation table (JPEG Annex K), in natural order: what quality 50 uses.
_IJG_LUMINANCE = np.array(
    [16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
     14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113,
     92, 49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99],
    dtype=np.float64,
)  # fmt: skip

RGB = npt.NDArray[np.uint8]


@dataclass(frozen=True)
class ImageFacts:
    """One file's picture and fidelity facts (see the module docstring)."""

    pixels: RGB  # at most ANALYSIS_SIDE on the long side, EXIF orientation applied
    width: int  # full size, oriented
    height: int
    pixel_digest: str  # sha256 of the full-size decoded RGB pixels and their shape
    format: str | None
    lossless: bool
    jpeg_quality: int | None  # estimated; None when not a JPEG
    camera: bool  # EXIF names a camera make or model
    window: npt.NDArray[np.float32]  # full-resolution gray window with the most detail
    top_band: float  # `top_band_share`
    # Full-resolution RGB windows at fixed places (a 3 x 3 grid), so copies of the same size
    # are compared where filters show (noise, blur, a mosaic vanish at the analysis size).
    grid: tuple[RGB, ...] = ()
    content: tuple[int, int, int, int] | None = None  # box of `pixels` without uniform borders, if any

    @property
    def content_share(self) -> float:
        """The share of the frame that is picture, not uniform borders (bars, padding, a frame)."""
        if self.content is None:
            return 1.0
        left, top, right, bottom = self.content
        return float((right - left) * (bottom - top)) / float(self.pixels.shape[0] * self.pixels.shape[1])

    @property
    def area(self) -> int:
        return self.width * self.height


def load_facts(path: str) -> ImageFacts:
    """Decode `path` once at full size and gather its facts; raises `ImageError` if it cannot."""
    decoded = decode(path)
    image = decoded.image
    fmt = decoded.format
    with Image.open(path) as raw:  # header only: quantisation tables, EXIF, WebP flavour
        quality = estimate_jpeg_quality(raw) if fmt == "JPEG" else None
        exif = raw.getexif()
        camera = bool(exif.get(0x010F) or exif.get(0x0110))
    rgb = np.asarray(image.convert("RGB"))
    digest = hashlib.sha256(f"{rgb.shape}".encode() + rgb.tobytes()).hexdigest()
    small = _shrink(rgb, ANALYSIS_SIDE)
    gray = _gray(rgb)
    box = trim_box(Image.fromarray(small))
    return ImageFacts(
        pixels=small,
        width=rgb.shape[1],
        height=rgb.shape[0],
        pixel_digest=digest,
        format=fmt,
        lossless=is_lossless(path, fmt),
        jpeg_quality=quality,
        camera=camera,
        window=detail_window(gray),
        top_band=top_band_share(gray),
        grid=grid_windows(rgb),
        content=None if box == (0, 0, small.shape[1], small.shape[0]) else box,
    )


def try_load_facts(path: str) -> ImageFacts | None:
    """`load_facts`, or None for a file that is gone or no longer decodes."""
    try:
        return load_facts(path)
    except (ImageError, OSError):
        return None


def is_lossless(path: str, fmt: str | None) -> bool:
    """Whether the file's format keeps pixels exactly: PNG, TIFF, ..., and lossless WebP (VP8L)."""
    if fmt in LOSSLESS_FORMATS:
        return True
    if fmt == "WEBP":
        with open(path, "rb") as handle:
            head = handle.read(40)
        # RIFF....WEBP then the first chunk: VP8L is lossless; VP8X (extended) says so later
        return b"VP8L" in head
    return False


def estimate_jpeg_quality(image: Image.Image) -> int | None:
    """The IJG quality (1-100) whose scaled standard table is nearest the file's luminance table."""
    tables = getattr(image, "quantization", None)
    if not tables or 0 not in tables:
        return None
    table = np.asarray(tables[0], dtype=np.float64)
    if table.size != 64:
        return None
    best, best_error = None, np.inf
    for quality in range(1, 101):
        scale = 5000 / quality if quality < 50 else 200 - 2 * quality
        expected = np.clip(np.floor((_IJG_LUMINANCE * scale + 50) / 100), 1, 255)
        # zigzag vs natural order differs between Pillow versions: compare sorted values too
        error = min(np.abs(np.sort(expected) - np.sort(table)).sum(), np.abs(expected - table).sum())
        if error < best_error:
            best, best_error = quality, error
    return best


def detail_window(gray: npt.NDArray[np.float64], side: int = WINDOW_SIDE) -> npt.NDArray[np.float32]:
    """The full-resolution window (of a 3 x 3 grid of candidates) with the most fine detail: where
    an upscaled copy's missing detail shows best (a centre of flat sky would show nothing)."""
    height, width = gray.shape
    side = min(side, height, width)
    best, best_energy = gray[:side, :side], -1.0
    for top in np.linspace(0, height - side, 3).astype(int).tolist():
        for left in np.linspace(0, width - side, 3).astype(int).tolist():
            window = gray[top : top + side, left : left + side]
            energy = float(np.abs(np.diff(window, axis=1)).mean() + np.abs(np.diff(window, axis=0)).mean())
            if energy > best_energy:
                best, best_energy = window, energy
    return np.ascontiguousarray(best, dtype=np.float32)


def top_band_share(gray: npt.NDArray[np.float64], side: int = WINDOW_SIDE) -> float:
    """Spectral energy of the top octave (0.25-0.5 cycles a pixel) over the octave below, on a
    full-resolution centre crop: an enlargement holds next to nothing in its top octave."""
    height, width = gray.shape
    side = min(side, height, width)
    if side < 16:
        return 0.0
    top, left = (height - side) // 2, (width - side) // 2
    crop = gray[top : top + side, left : left + side]
    window = np.hanning(side)
    spectrum = np.abs(np.fft.fft2((crop - crop.mean()) * np.outer(window, window))) ** 2
    frequencies = np.fft.fftfreq(side)
    radius = np.hypot(frequencies[:, None], frequencies[None, :])
    upper = float(spectrum[(radius >= 0.25) & (radius < 0.5)].sum())
    lower = float(spectrum[(radius >= 0.125) & (radius < 0.25)].sum())
    return upper / lower if lower > 0 else 0.0


def grid_windows(rgb: RGB, side: int = GRID_SIDE) -> tuple[RGB, ...]:
    """Full-resolution windows at the 9 places of a 3 x 3 grid (corners, edges' middles, centre)."""
    height, width = rgb.shape[:2]
    side = min(side, height, width)
    return tuple(
        np.ascontiguousarray(rgb[top : top + side, left : left + side])
        for top in np.linspace(0, height - side, 3).astype(int).tolist()
        for left in np.linspace(0, width - side, 3).astype(int).tolist()
    )


def lost_detail(window: npt.NDArray[np.float32], factor: float) -> float:
    """The share of the window's variance that scaling it down by `factor` and up again loses:
    the detail its resolution holds beyond that of a copy `factor` times smaller. An upscaled
    copy holds next to none (1/8-1/50 of its source's at the same factor, on real photos)."""
    height, width = window.shape
    if factor <= 1 or min(height, width) < 8:
        return 0.0
    image = Image.fromarray(window)
    small = image.resize(
        (max(1, round(width / factor)), max(1, round(height / factor))), Image.Resampling.BOX
    )
    restored = np.asarray(small.resize((width, height), Image.Resampling.BICUBIC), dtype=np.float32)
    variance = float(window.var())
    return float(((window - restored) ** 2).mean()) / variance if variance > 0 else 0.0


def _gray(rgb: RGB) -> npt.NDArray[np.float64]:
    weights = np.array([0.299, 0.587, 0.114])
    gray: npt.NDArray[np.float64] = rgb.astype(np.float64) @ weights
    return gray


def _shrink(rgb: RGB, side: int) -> RGB:
    height, width = rgb.shape[:2]
    if max(height, width) <= side:
        return rgb
    image = Image.fromarray(rgb)
    image.thumbnail((side, side), Image.Resampling.BOX)
    return np.asarray(image)
