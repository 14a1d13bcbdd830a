"""Bytes or a path in, a decoded Pillow image out: limits, EXIF orientation, reduced-scale JPEG decode.

This is the only module that reads image files. Every failure becomes a `lookalike.errors.ImageError`
that names the file and the reason, so a batch job can report it and go on.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import stat
import threading
import warnings
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageOps, UnidentifiedImageError

from lookalike.errors import (
    CorruptImageError,
    FileMissingError,
    ImageError,
    ImageTooLargeError,
    NotAFileError,
    UnreadableFileError,
    UnsupportedImageError,
)

ImageSource = str | os.PathLike[str] | bytes | bytearray | memoryview | BinaryIO | Image.Image

_optional_plugins_registered = False


def _register_optional_plugins() -> None:
    """Enable HEIC/AVIF decoding when the `lookalike[heif]` extra is installed."""
    global _optional_plugins_registered
    if _optional_plugins_registered:
        return
    _optional_plugins_registered = True
    with contextlib.suppress(Exception):
        from pillow_heif import register_heif_opener

        register_heif_opener()
    with contextlib.suppress(Exception):
        import pillow_avif  # noqa: F401


@dataclass(frozen=True)
class DecodeLimits:
    """Bounds that keep a hostile file from exhausting memory or time."""

    max_pixels: int = 178_956_970  # Pillow's decompression-bomb error threshold
    max_side: int = 200_000
    max_file_bytes: int = 1 << 30
    # Memory the decoded pixels may take (pixels x bytes a pixel, checked before decoding); a
    # 16-bit or float image costs 2-4x an 8-bit one of the same size. Default: no tighter than
    # max_pixels of RGB.
    max_decoded_bytes: int = 4 * 178_956_970


DEFAULT_LIMITS = DecodeLimits()


@dataclass(frozen=True)
class DecodedImage:
    """A loaded image plus what we learnt about it while decoding."""

    image: Image.Image
    name: str
    format: str | None
    width: int  # full-resolution width, after EXIF orientation
    height: int
    draft_scale: int  # 1 = full scale; 8 = JPEG decoded at 1/8 scale
    # The pixels as uint32 words (r | g << 8 | b << 16 | 0xFF << 24), when the image was decoded
    # straight into this thread's scratch buffer: valid until the next such decode in the thread.
    words: npt.NDArray[np.uint32] | None = None


class _PixelScratch(threading.local):
    words: npt.NDArray[np.uint32] | None = None


_scratch = _PixelScratch()
SCRATCH_MAX_PIXELS = 16_000_000  # larger images get a one-off buffer: memory kept stays <= 64 MB


def scratch_words(pixels: int) -> npt.NDArray[np.uint32]:
    """A per-thread buffer of `pixels` uint32 words, reused from image to image.

    A fresh 48 MB array per 12 MP photo costs more in page faults than the work done in it.
    It holds one image's pixels at a time: whoever fills it owns it until the next call.
    """
    if pixels > SCRATCH_MAX_PIXELS:
        return np.empty(pixels, dtype=np.uint32)
    if _scratch.words is None or _scratch.words.size < pixels:
        _scratch.words = np.empty(max(pixels, 1), dtype=np.uint32)
    return _scratch.words[:pixels]


def read_file(path: str | os.PathLike[str], limits: DecodeLimits = DEFAULT_LIMITS) -> bytes:
    """Read a whole image file, turning OS errors into ImageErrors that name the file."""
    name = os.fspath(path)
    try:
        info = os.stat(name)
    except FileNotFoundError:
        raise FileMissingError(name, "no such file") from None
    except PermissionError:
        raise UnreadableFileError(name, "permission denied") from None
    except OSError as exc:
        raise UnreadableFileError(name, exc.strerror or str(exc)) from None
    if stat.S_ISDIR(info.st_mode):
        raise NotAFileError(name, "is a directory")
    if not stat.S_ISREG(info.st_mode):
        raise NotAFileError(name, "is not a regular file")
    if info.st_size > limits.max_file_bytes:
        raise ImageTooLargeError(name, f"file is {info.st_size} bytes, limit {limits.max_file_bytes}")
    try:
        with open(name, "rb", buffering=0) as handle:
            return _read_capped(handle, info.st_size, name, limits.max_file_bytes)
    except FileNotFoundError:
        raise FileMissingError(name, "no such file (deleted while reading)") from None
    except PermissionError:
        raise UnreadableFileError(name, "permission denied") from None
    except OSError as exc:
        raise UnreadableFileError(name, exc.strerror or str(exc)) from None


def _read_capped(handle: BinaryIO, expected: int, name: str, limit: int) -> bytes:
    """The whole file, read in one call of the size stat gave (asking Python for `limit` bytes up
    front costs ~0.8 ms per file in allocation), refusing a file that grew past the limit."""
    chunks: list[bytes] = []
    total = 0
    while True:
        wanted = expected + 1 - total if total <= expected else min(1 << 20, limit + 1 - total)
        chunk = handle.read(wanted)
        if not chunk:
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)
        chunks.append(chunk)
        total += len(chunk)
        if total > limit:
            raise ImageTooLargeError(name, f"file grew past the limit of {limit} bytes while being read")


def source_name(source: ImageSource) -> str:
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    if isinstance(source, Image.Image):
        return str(getattr(source, "filename", "") or "<image>")
    return str(getattr(source, "name", "") or "<bytes>")


def draft_request(width: int, height: int, min_side: int) -> tuple[int, int]:
    """The size to ask Pillow's JPEG draft for so that the shorter side stays >= min_side."""
    shorter = min(width, height)
    if shorter <= min_side:
        return width, height
    scale = min_side / shorter
    return max(1, math.ceil(width * scale)), max(1, math.ceil(height * scale))


def decode(
    source: ImageSource,
    *,
    orientation: bool = True,
    draft_min_side: int | None = None,
    limits: DecodeLimits = DEFAULT_LIMITS,
    name: str | None = None,
    into_scratch: bool = False,
) -> DecodedImage:
    """Decode `source` (path, bytes, file object or Pillow image) into a loaded image.

    `draft_min_side` enables reduced-scale JPEG decoding: the decoder skips DCT detail so the
    shorter side is still at least that many pixels (never upscaled). `orientation` applies the
    EXIF orientation tag, so a phone photo and its upright copy hash alike. `into_scratch` lets a
    full-scale RGB JPEG decode straight into this thread's scratch buffer (mode RGBX, `words`
    set): no fresh memory per image, and colorhash reads the words without a copy. Only for
    callers done with the image before they decode the next one.
    """
    _register_optional_plugins()
    label = name or source_name(source)
    try:
        if isinstance(source, Image.Image):
            return _finish(source, label, orientation, None, limits, into_scratch=False)
        if isinstance(source, (str, os.PathLike)):
            data: bytes | BinaryIO = read_file(source, limits)
        elif isinstance(source, (bytes, bytearray, memoryview)):
            data = bytes(source)
        else:
            data = source
        stream = io.BytesIO(data) if isinstance(data, bytes) else data
        if isinstance(data, bytes) and not data:
            raise UnsupportedImageError(label, "empty file (0 bytes)")
        with warnings.catch_warnings():
            # Pillow warns about bombs (we apply our own limits) and about corrupt metadata it
            # skips; neither belongs on a user's terminal.
            warnings.simplefilter("ignore")
            try:
                image = Image.open(stream)
            except UnidentifiedImageError:
                kind = sniff_image_type(data[:32] if isinstance(data, bytes) else b"")
                if kind is not None:  # the right magic bytes, but Pillow could not parse the header
                    raise CorruptImageError(
                        label, f"broken {kind} data (the header cannot be parsed)"
                    ) from None
                raise UnsupportedImageError(label, "not a recognised image format") from None
            return _finish(image, label, orientation, draft_min_side, limits, into_scratch)
    except ImageError:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageTooLargeError(label, str(exc)) from None
    except MemoryError:
        raise ImageTooLargeError(label, "out of memory while decoding") from None
    except Exception as exc:  # hostile bytes can make any decoder raise anything
        raise CorruptImageError(label, _describe(exc)) from None


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if "truncated" in text.lower():
        return f"truncated image data ({text})"
    return f"cannot decode image data ({type(exc).__name__}: {text})"


def _check_limits(image: Image.Image, label: str, limits: DecodeLimits) -> None:
    width, height = image.size
    if width <= 0 or height <= 0:
        raise CorruptImageError(label, f"image has no pixels ({width}x{height})")
    if width > limits.max_side or height > limits.max_side:
        raise ImageTooLargeError(label, f"{width}x{height} exceeds the {limits.max_side}-pixel side limit")
    if width * height > limits.max_pixels:
        raise ImageTooLargeError(
            label, f"{width}x{height} = {width * height} pixels exceeds the limit of {limits.max_pixels}"
        )


# Bytes Pillow keeps a pixel in: one for 1-bit, L and palette images, two for 16-bit, else four.
_ONE_BYTE_MODES = {"1", "L", "P"}


def decoded_bytes(image: Image.Image) -> int:
    """The memory `image`'s pixels take once loaded, from its header's size and mode."""
    mode = image.mode
    per_pixel = 1 if mode in _ONE_BYTE_MODES else 2 if mode.startswith("I;16") else 4
    return image.size[0] * image.size[1] * per_pixel


def _check_memory(image: Image.Image, label: str, limits: DecodeLimits) -> None:
    needed = decoded_bytes(image)
    if needed > limits.max_decoded_bytes:
        width, height = image.size
        raise ImageTooLargeError(
            label,
            f"{width}x{height} {image.mode} pixels need {needed / 1e6:.0f} MB to decode, "
            f"more than the limit of {limits.max_decoded_bytes / 1e6:.0f} MB",
        )


def _finish(
    image: Image.Image,
    label: str,
    orientation: bool,
    draft_min_side: int | None,
    limits: DecodeLimits,
    into_scratch: bool,
) -> DecodedImage:
    _check_limits(image, label, limits)
    full_width, full_height = image.size
    draft_scale = 1
    words = None
    if draft_min_side is not None and image.format == "JPEG":
        requested = draft_request(full_width, full_height, draft_min_side)
        if requested != (full_width, full_height):
            image.draft(image.mode, requested)
            draft_scale = max(1, round(full_width / image.size[0]))
    _check_memory(image, label, limits)
    if into_scratch and draft_scale == 1:
        words = _load_into_scratch(image)
    image.load()
    image_format = image.format
    if orientation:
        loaded = image
        image, transposed = _apply_orientation(image)
        if transposed:
            full_width, full_height = full_height, full_width
        if image is not loaded:
            words = None  # the rotated copy has memory of its own
    return DecodedImage(image, label, image_format, full_width, full_height, draft_scale, words)


def _load_into_scratch(image: Image.Image) -> npt.NDArray[np.uint32] | None:
    """Decode an RGB JPEG into the scratch words: Pillow's decoder writes into whatever image
    memory is in place when `load()` runs, so put there an RGBX image mapped onto the words.
    RGBX has RGB's layout (4 bytes a pixel) and converts to L and HSV with the same functions,
    so every hash is unchanged. None (and an ordinary decode) when anything is unexpected."""
    if image.format != "JPEG" or image.mode != "RGB" or len(getattr(image, "tile", ())) != 1:
        return None
    width, height = image.size
    words = scratch_words(width * height)
    try:
        target = Image.frombuffer("RGBX", (width, height), words, "raw", "RGBX", 0, 1)
        core = target.im
        image._mode = "RGBX"  # what JpegImageFile.draft itself sets to decode to another mode
        image.im = core
    except Exception:
        image._mode = "RGB"
        return None
    image.load()
    if image.im is not core:  # Pillow made memory of its own: the words are not the pixels
        return None
    return words


_SWAPS_AXES = {5, 6, 7, 8}


def _apply_orientation(image: Image.Image) -> tuple[Image.Image, bool]:
    """Apply the EXIF orientation tag; a broken or out-of-range tag is ignored, not fatal."""
    try:
        tag = image.getexif().get(0x0112)
    except Exception:
        return image, False
    if not isinstance(tag, int) or tag not in range(2, 9):
        return image, False
    try:
        rotated = ImageOps.exif_transpose(image)
    except Exception:
        return image, False
    if rotated is None:
        return image, False
    return rotated, tag in _SWAPS_AXES


# First bytes of the image formats lookalike reads; used to tell a broken image from a non-image.
_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
)
_ISO_BRANDS = {
    b"heic": "HEIF",
    b"heix": "HEIF",
    b"mif1": "HEIF",
    b"msf1": "HEIF",
    b"avif": "AVIF",
    b"avis": "AVIF",
}


def sniff_image_type(head: bytes) -> str | None:
    """The image format `head` (the first bytes of a file) begins with, or None."""
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if head[4:8] == b"ftyp" and head[8:12] in _ISO_BRANDS:
        return _ISO_BRANDS[head[8:12]]
    for signature, name in _SIGNATURES:
        if head.startswith(signature):
            return name
    return None
