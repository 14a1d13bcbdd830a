"""A drop-in replacement for ImageHash 4.3.2: `import lookalike.compat.imagehash as imagehash`.

Same public names, same signatures, same bits (EXIF orientation is ignored, as ImageHash ignores
it). What differs is speed: colorhash classifies pixels through a colour table instead of a
full-resolution HSV image (and makes no grayscale copy unless its path reads one), crop-resistant
segmentation uses scipy's connected-component labelling instead of a pixel-by-pixel Python flood
fill, and hashes are hashed on all their bits. Nothing is kept between calls: a Pillow image can
be changed in place without any sign a cache could check, so each call reads it as it is now. Where
ImageHash 4.3.2 raised on degenerate input (an empty multi-hash, crop boxes that round to nothing)
this module behaves like later ImageHash releases.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy
import numpy.typing as npt
from PIL import Image

from lookalike.algorithms import crop_resistant as _crop
from lookalike.algorithms.average import average_bits
from lookalike.algorithms.color import color_bits, color_counts
from lookalike.algorithms.difference import difference_bits, difference_vertical_bits
from lookalike.algorithms.perceptual import perceptual_bits, perceptual_simple_bits
from lookalike.algorithms.wavelet import natural_scale, wavelet_bits, wavelet_low_band
from lookalike.prepare import convert_to_gray

__version__ = "4.3.2"

ANTIALIAS = Image.Resampling.LANCZOS

NDArray = npt.NDArray[numpy.bool_]
MeanFunc = Callable[[NDArray], float]
WhashMode = str


def _binary_array_to_hex(arr: npt.ArrayLike) -> str:
    """Hex of a boolean array, first element most significant, ceil(bits / 4) digits."""
    flat = numpy.asarray(arr, dtype=bool).ravel()
    packed = numpy.packbits(flat)
    value = int.from_bytes(packed.tobytes(), "big") >> (packed.size * 8 - flat.size)
    return format(value, f"0{(flat.size + 3) // 4}x")


def _bits_of(value: int, width: int) -> NDArray:
    """`width` bits of `value`, most significant first (value must fit)."""
    nbytes = (width + 7) // 8
    raw = numpy.frombuffer((value << (nbytes * 8 - width)).to_bytes(nbytes, "big"), numpy.uint8)
    return numpy.unpackbits(raw)[:width].astype(bool)


class ImageHash:
    """Hash encapsulation: `.hash` is the boolean array; `a - b` is the Hamming distance."""

    def __init__(self, binary_array: NDArray) -> None:
        self.hash = binary_array

    def __str__(self) -> str:
        return _binary_array_to_hex(self.hash)

    def __repr__(self) -> str:
        return repr(self.hash)

    def __sub__(self, other: ImageHash) -> int:
        if other is None:
            raise TypeError("Other hash must not be None.")
        if self.hash.size != other.hash.size:
            raise TypeError("ImageHashes must be of the same shape.", self.hash.shape, other.hash.shape)
        return int(numpy.count_nonzero(self.hash.flatten() != other.hash.flatten()))

    def __eq__(self, other: object) -> bool:
        if other is None:
            return False
        return bool(numpy.array_equal(self.hash.flatten(), other.hash.flatten()))  # type: ignore[attr-defined]

    def __ne__(self, other: object) -> bool:
        if other is None:
            return False
        return not numpy.array_equal(self.hash.flatten(), other.hash.flatten())  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        # All bits count (ImageHash folds them into 8 bits, which makes dictionaries slow).
        flat = numpy.asarray(self.hash, dtype=bool).ravel()
        return hash((flat.size, numpy.packbits(flat).tobytes()))

    def __len__(self) -> int:
        return int(self.hash.size)

    def __bytes__(self) -> bytes:
        """The bits packed big-endian, padded with zeros at the end (as later ImageHash releases)."""
        return numpy.packbits(numpy.asarray(self.hash, dtype=bool).ravel()).tobytes()

    def __int__(self) -> int:
        """The signed big-endian integer of `bytes(h)` (as later ImageHash releases)."""
        return int.from_bytes(bytes(self), "big", signed=True)


HashFunc = Callable[[Image.Image], ImageHash]


def hex_to_hash(hexstr: str) -> ImageHash:
    """A square hash (hash_size x hash_size) from its hex."""
    hash_size = int(numpy.sqrt(len(hexstr) * 4))
    value = int(hexstr, 16)
    width = hash_size * hash_size
    if value.bit_length() > width:
        raise ValueError(f"hex {hexstr!r} does not describe a {hash_size}x{hash_size} hash")
    return ImageHash(_bits_of(value, width).reshape(hash_size, hash_size))


def hex_to_flathash(hexstr: str, hashsize: int) -> ImageHash:
    """A flat hash of rows of `hashsize` bits (colorhash: hashsize = binbits) from its hex."""
    hash_size = int(len(hexstr) * 4 / hashsize)
    value = int(hexstr, 16)
    width = max(hash_size * hashsize, value.bit_length())
    return ImageHash(_bits_of(value, width).reshape(1, width))


def hex_to_multihash(hexstr: str) -> ImageMultiHash:
    """A crop-resistant multi-hash from comma-separated hex."""
    return ImageMultiHash([hex_to_hash(part) for part in hexstr.split(",")])


def old_hex_to_hash(hexstr: str, hash_size: int = 8) -> ImageHash:
    """A hash stored by ImageHash 3.7 and earlier (each byte's bits least significant first)."""
    count = hash_size * (hash_size // 4)
    if len(hexstr) != count:
        raise ValueError(f"Expected hex string size of {count}.")
    values = numpy.array([int(hexstr[2 * i : 2 * i + 2], 16) for i in range(count // 2)], dtype=numpy.uint8)
    return ImageHash(numpy.unpackbits(values[:, None], axis=1, bitorder="little").astype(bool))


def _gray(image: Image.Image, width: int, height: int) -> npt.NDArray[numpy.uint8]:
    return numpy.asarray(convert_to_gray(image).resize((width, height), ANTIALIAS))


def average_hash(image: Image.Image, hash_size: int = 8, mean: Callable[..., Any] = numpy.mean) -> ImageHash:
    """Average hash: pixels of a hash_size x hash_size grayscale thumbnail above `mean`."""
    if hash_size < 2:
        raise ValueError("Hash size must be greater than or equal to 2")
    return ImageHash(average_bits(_gray(image, hash_size, hash_size), mean))


def phash(image: Image.Image, hash_size: int = 8, highfreq_factor: int = 4) -> ImageHash:
    """Perceptual hash: low DCT frequencies above their median."""
    if hash_size < 2:
        raise ValueError("Hash size must be greater than or equal to 2")
    img_size = hash_size * highfreq_factor
    return ImageHash(perceptual_bits(_gray(image, img_size, img_size), hash_size))


def phash_simple(image: Image.Image, hash_size: int = 8, highfreq_factor: int = 4) -> ImageHash:
    """Simple perceptual hash: row-wise DCT coefficients 1..hash_size above their mean."""
    img_size = hash_size * highfreq_factor
    return ImageHash(perceptual_simple_bits(_gray(image, img_size, img_size), hash_size))


def dhash(image: Image.Image, hash_size: int = 8) -> ImageHash:
    """Difference hash, comparing horizontal neighbours."""
    if hash_size < 2:
        raise ValueError("Hash size must be greater than or equal to 2")
    return ImageHash(difference_bits(_gray(image, hash_size + 1, hash_size)))


def dhash_vertical(image: Image.Image, hash_size: int = 8) -> ImageHash:
    """Difference hash, comparing vertical neighbours."""
    return ImageHash(difference_vertical_bits(_gray(image, hash_size, hash_size + 1)))


def whash(
    image: Image.Image,
    hash_size: int = 8,
    image_scale: int | None = None,
    mode: WhashMode = "haar",
    remove_max_haar_ll: bool = True,
) -> ImageHash:
    """Wavelet hash (`mode` "haar" or "db4")."""
    if image_scale is not None:
        if image_scale & (image_scale - 1) != 0:
            raise AssertionError("image_scale is not power of 2")
    else:
        image_scale = natural_scale(image.size[0], image.size[1], hash_size)
    ll_max_level = int(numpy.log2(image_scale))
    level = int(numpy.log2(hash_size))
    if hash_size & (hash_size - 1) != 0:
        raise AssertionError("hash_size is not power of 2")
    if level > ll_max_level:
        raise AssertionError("hash_size in a wrong range")
    pixels = _gray(image, image_scale, image_scale)
    return ImageHash(wavelet_bits(wavelet_low_band(pixels, hash_size, mode, remove_max_haar_ll)))


def colorhash(image: Image.Image, binbits: int = 3) -> ImageHash:
    """Colour hash: black, gray and 12 hue/saturation fractions, `binbits` bits each."""
    counts = color_counts(image, lambda: convert_to_gray(image))
    return ImageHash(color_bits(counts, binbits).reshape((-1, binbits)))


class ImageMultiHash:
    """A hash per image segment, matched as in "Efficient Cropping-Resistant Robust Image Hashing"."""

    def __init__(self, hashes: list[ImageHash]) -> None:
        self.segment_hashes = hashes

    def __eq__(self, other: object) -> bool:
        if other is None:
            return False
        return self.matches(other)  # type: ignore[arg-type]

    def __ne__(self, other: object) -> bool:
        return not self.matches(other)  # type: ignore[arg-type]

    def __sub__(
        self, other: ImageMultiHash, hamming_cutoff: float | None = None, bit_error_rate: float | None = None
    ) -> float:
        matches, sum_distance = self.hash_diff(other, hamming_cutoff, bit_error_rate)
        max_difference = len(self.segment_hashes)
        if matches == 0:
            return max_difference
        max_distance = matches * len(self.segment_hashes[0])
        tie_breaker = 0 - (float(sum_distance) / max_distance)
        return max_difference - (matches + tie_breaker)

    def __hash__(self) -> int:
        return hash(tuple(hash(segment) for segment in self.segment_hashes))

    def __str__(self) -> str:
        return ",".join(str(x) for x in self.segment_hashes)

    def __repr__(self) -> str:
        return repr(self.segment_hashes)

    def hash_diff(
        self,
        other_hash: ImageMultiHash,
        hamming_cutoff: float | None = None,
        bit_error_rate: float | None = None,
    ) -> tuple[int, int]:
        """(own segments with a segment of `other_hash` within the cutoff, sum of their distances)."""
        if not self.segment_hashes or not other_hash.segment_hashes:
            return 0, 0
        if hamming_cutoff is None:
            if bit_error_rate is None:
                bit_error_rate = 0.25
            hamming_cutoff = len(self.segment_hashes[0]) * bit_error_rate
        distances = []
        for segment_hash in self.segment_hashes:
            lowest = min(segment_hash - other for other in other_hash.segment_hashes)
            if lowest <= hamming_cutoff:
                distances.append(lowest)
        return len(distances), sum(distances)

    def matches(
        self,
        other_hash: ImageMultiHash,
        region_cutoff: int = 1,
        hamming_cutoff: float | None = None,
        bit_error_rate: float | None = None,
    ) -> bool:
        """True if at least `region_cutoff` segments match."""
        matches, _ = self.hash_diff(other_hash, hamming_cutoff, bit_error_rate)
        return matches >= region_cutoff

    def best_match(
        self,
        other_hashes: Sequence[ImageMultiHash],
        hamming_cutoff: float | None = None,
        bit_error_rate: float | None = None,
    ) -> ImageMultiHash:
        """The hash in `other_hashes` closest to this one."""
        return min(other_hashes, key=lambda other: self.__sub__(other, hamming_cutoff, bit_error_rate))


def _find_all_segments(
    pixels: npt.NDArray[Any], segment_threshold: float, min_segment_size: int
) -> list[Any]:
    """The bright and dark regions ImageHash finds; each has a length and iterates (row, col) pixels."""
    return list(_crop.find_segments(pixels, segment_threshold, min_segment_size))


def _as_segment(segment: Iterable[tuple[int, int]] | _crop.Segment) -> _crop.Segment:
    if isinstance(segment, _crop.Segment):
        return segment
    pixels = list(segment)
    rows = [p[0] for p in pixels]
    cols = [p[1] for p in pixels]
    return _crop.Segment(len(pixels), min(rows), min(cols), max(rows), max(cols))


def crop_resistant_hash(
    image: Image.Image,
    hash_func: HashFunc = dhash,
    limit_segments: int | None = None,
    segment_threshold: int = 128,
    min_segment_size: int = 500,
    segmentation_image_size: int = 300,
) -> ImageMultiHash:
    """A multi-hash of the image's bright and dark segments, resistant to cropping."""
    pixels = _crop.segmentation_pixels(convert_to_gray(image), segmentation_image_size)
    segments = [_as_segment(s) for s in _find_all_segments(pixels, segment_threshold, min_segment_size)]
    boxes = _crop.crop_boxes(segments, image.size, segmentation_image_size, limit_segments)
    return ImageMultiHash(_crop.hash_segments(image, boxes, hash_func))


__all__ = [
    "ANTIALIAS",
    "ImageHash",
    "ImageMultiHash",
    "average_hash",
    "colorhash",
    "crop_resistant_hash",
    "dhash",
    "dhash_vertical",
    "hex_to_flathash",
    "hex_to_hash",
    "hex_to_multihash",
    "old_hex_to_hash",
    "phash",
    "phash_simple",
    "whash",
]
