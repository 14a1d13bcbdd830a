"""PDQ: Meta's 256-bit perceptual hash with its quality score, bit-exact with the C++ reference.

Steps, as in Meta's `pdqhashing.cpp`: luma from RGB (0.299 R + 0.587 G + 0.114 B), a Jarosz
tent-filter downsample to 64x64 (`jarosz`), a quality score from the 64x64 gradients, a 16x16
block of DCT-II frequencies 1..16 on each axis, and one bit per frequency: above the median or not.
Every float step repeats the reference's float32 (and, for luma, float64) arithmetic in the same
order, so fed the same RGB array as the `pdqhash` package, the DCT coefficients, hence the bits
and the quality, are identical. The 8 rotations and flips come from the same DCT (sign flips and
transposes of the block), in Meta's order (see `dihedral`).

Hex: bit k of Meta's hash is coefficient (k // 16, k % 16); the hex starts at bit 255.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from lookalike.algorithms.dihedral import dct_dihedral
from lookalike.algorithms.jarosz import jarosz_downsample, jarosz_downsample_blocks
from lookalike.algorithms.registry import Algorithm, register
from lookalike.hash import Hash

if TYPE_CHECKING:
    from lookalike.prepare import ImageView

Float32Array = npt.NDArray[np.float32]

PDQ_SIZE = 16  # DCT frequencies kept per axis: 16 x 16 = 256 bits
DOWNSAMPLE_SIZE = 64
MIN_HASHABLE_SIDE = 5  # the reference gives an all-zero hash, quality 0, below this
LUMA_COEFFICIENTS = (0.299, 0.587, 0.114)
LUMA_BAND_PIXELS = 1 << 15  # rows of luma computed at a time (float64 temporaries of 256 KiB)
MATCH_DISTANCE = 31  # Meta's recommended PDQ match threshold
UNRELIABLE_BELOW = 50
# Fast mode decodes and reduces images to this shorter side (JPEG at up to 1/8 scale). Measured on
# 529 real photos: 99% of fast hashes within 6 bits of exact (max 10), see bench/pdq_conformance.py.
FAST_WORKING_SIDE = 256  # Meta's advice: PDQ hashes of quality < 50 are not worth matching


def _dct_matrix() -> Float32Array:
    """Rows 1..16 of the 64-point DCT-II, as the reference builds it (cos in double, stored as float)."""
    scale = float(np.float32(math.sqrt(2.0 / 64.0)))
    step = math.pi / 2.0 / 64.0
    rows = [
        [scale * math.cos(step * (row + 1) * (2 * col + 1)) for col in range(DOWNSAMPLE_SIZE)]
        for row in range(PDQ_SIZE)
    ]
    return np.asarray(rows, dtype=np.float32)


DCT_MATRIX = _dct_matrix()
_GRAY_LUMA = (
    np.arange(256) * LUMA_COEFFICIENTS[0]
    + np.arange(256) * LUMA_COEFFICIENTS[1]
    + np.arange(256) * LUMA_COEFFICIENTS[2]
).astype(np.float32)


def pdq_luma(rgb: npt.NDArray[np.uint8]) -> Float32Array:
    """Luma of an (H, W, 3) uint8 array as `pdqhash` computes it: R*0.299 + G*0.587 + B*0.114 in
    float64, left to right, stored as float32. Done in bands of rows that stay in cache."""
    height, width = rgb.shape[:2]
    luma = np.empty((height, width), dtype=np.float32)
    band = max(1, LUMA_BAND_PIXELS // max(width, 1))
    total = np.empty((band, width), dtype=np.float64)
    term = np.empty((band, width), dtype=np.float64)
    r, g, b = LUMA_COEFFICIENTS
    for top in range(0, height, band):
        pixels = rgb[top : top + band]
        rows = pixels.shape[0]
        acc, tmp = total[:rows], term[:rows]
        np.multiply(pixels[:, :, 0], r, out=acc)
        np.add(acc, np.multiply(pixels[:, :, 1], g, out=tmp), out=acc)
        np.add(acc, np.multiply(pixels[:, :, 2], b, out=tmp), out=acc)
        luma[top : top + rows] = acc
    return luma


def pdq_luma_from_gray(gray: npt.NDArray[np.uint8]) -> Float32Array:
    """`pdq_luma` of the RGB image whose three channels all equal `gray` (a table lookup)."""
    return np.asarray(_GRAY_LUMA[gray])


def pdq_quality(block: Float32Array) -> int:
    """Meta's quality (0-100): truncated vertical and horizontal gradients of the 64x64 image.

    Each neighbour difference becomes an integer percentage of 255 (float32, truncated toward
    zero); their absolute sum divided by 90 (integer division) is the quality, capped at 100.
    """
    hundred, full = np.float32(100), np.float32(255)
    vertical = np.trunc((block[:-1, :] - block[1:, :]) * hundred / full)
    horizontal = np.trunc((block[:, :-1] - block[:, 1:]) * hundred / full)
    gradient_sum = int(np.abs(vertical).astype(np.int64).sum() + np.abs(horizontal).astype(np.int64).sum())
    return min(100, gradient_sum // 90)


def pdq_dct(block: Float32Array) -> Float32Array:
    """Frequencies 1..16 x 1..16 of the 64x64 block's DCT-II: D A D^T, summed as the reference does.

    The reference accumulates each dot product left to right in float32; `np.cumsum` is
    sequential (unlike `np.sum`, which sums pairwise), so its last element is that same sum.
    """
    left = DCT_MATRIX[:, :, None] * block[None, :, :]  # (i, k, j): D[i, k] * A[k, j]
    partial = np.cumsum(left, axis=1, dtype=np.float32)[:, -1, :]  # (16, 64) = D A
    right = partial[:, None, :] * DCT_MATRIX[None, :, :]  # (i, j, k): T[i, k] * D[j, k]
    return np.asarray(np.cumsum(right, axis=2, dtype=np.float32)[:, :, -1])


def pdq_coefficients(luma: Float32Array) -> tuple[Float32Array, int]:
    """The 16x16 DCT block and the quality of a float32 luma image (rows x columns).

    Images smaller than 5 pixels on a side give an all-zero block and quality 0 (the reference
    refuses to hash them); a 64x64 image is used as is, without blurring, as in the reference.
    """
    rows, cols = luma.shape
    if rows < MIN_HASHABLE_SIDE or cols < MIN_HASHABLE_SIDE:
        return np.zeros((PDQ_SIZE, PDQ_SIZE), dtype=np.float32), 0
    if (rows, cols) == (DOWNSAMPLE_SIZE, DOWNSAMPLE_SIZE):
        block = np.asarray(luma, dtype=np.float32)
    else:
        block = jarosz_downsample(luma, DOWNSAMPLE_SIZE)
    return pdq_dct(block), pdq_quality(block)


def pdq_median(coefficients: Float32Array) -> float:
    """The reference's median (Torben's method), which for 256 values is the 128th smallest.

    (Torben stops when at most 128 values lie on either side of its guess, then returns the
    largest value below it, or the guess itself: in both cases the 128th smallest.)
    """
    flat = coefficients.ravel()
    middle = (flat.size - 1) // 2
    return float(np.partition(flat, middle)[middle])


def pdq_hash_from_coefficients(coefficients: Float32Array, quality: int) -> Hash:
    """One bit per coefficient, set when above the median; Meta's bit order (hex from bit 255)."""
    bits = coefficients > pdq_median(coefficients)
    return Hash.from_bits(bits.ravel()[::-1], quality)


def pdq_dihedral_from_coefficients(coefficients: Float32Array, quality: int) -> list[Hash]:
    """The 8 rotation/flip hashes (Meta's order) from one DCT block: sign flips and transposes."""
    return [
        pdq_hash_from_coefficients(dct_dihedral(coefficients, index, first_frequency=1), quality)
        for index in range(8)
    ]


def pdq_hash(rgb: npt.NDArray[np.uint8]) -> Hash:
    """PDQ of an (H, W, 3) uint8 RGB array, quality on `.quality`; as `pdqhash.compute(rgb)`."""
    return pdq_hash_from_coefficients(*pdq_coefficients(pdq_luma(rgb)))


def view_luma(view: ImageView) -> Float32Array:
    """PDQ luma of the image a view holds: from RGB, or straight from 8-bit grayscale."""
    source = view.source
    if source.mode == "L":
        return pdq_luma_from_gray(np.asarray(source))
    return pdq_luma(np.asarray(view.rgb_image()))


def reduction_factor(full_size: tuple[int, int], reduced_size: tuple[int, int]) -> int | None:
    """The integer factor f with ceil(full / f) == reduced on both axes (how JPEG draft decoding and
    Pillow's `reduce` size their output), or None when the sizes are not related that way."""
    (full_w, full_h), (reduced_w, reduced_h) = full_size, reduced_size
    guess = full_w / reduced_w
    for factor in sorted(range(max(1, int(guess) - 1), int(guess) + 3), key=lambda f: abs(f - guess)):
        if -(-full_w // factor) == reduced_w and -(-full_h // factor) == reduced_h:
            return factor
    return None


def view_coefficients(view: ImageView) -> tuple[Float32Array, int]:
    """DCT block and quality for a view: bit-exact on full-resolution pixels; in fast mode, from the
    reduced image through the reference's full-resolution blur windows (`jarosz_downsample_blocks`)."""
    decoded = view.decoded
    full_size = (decoded.width, decoded.height)
    factor = 1 if view.size == full_size else reduction_factor(full_size, view.size)
    luma = view_luma(view)
    if factor is None or factor == 1:
        return pdq_coefficients(luma)
    block = jarosz_downsample_blocks(luma, (decoded.height, decoded.width), factor, DOWNSAMPLE_SIZE)
    return pdq_dct(block), pdq_quality(block)


def _coefficients(view: ImageView) -> tuple[Float32Array, int]:
    return view.memo("pdq-dct", lambda: view_coefficients(view))


def _compute(view: ImageView, hash_size: int) -> Hash:
    return pdq_hash_from_coefficients(*_coefficients(view))


def _dihedral(view: ImageView, hash_size: int) -> list[Hash]:
    return pdq_dihedral_from_coefficients(*_coefficients(view))


PDQ = register(
    Algorithm(
        name="pdq",
        summary="Meta's PDQ: 256 bits from the 16x16 low DCT frequencies of a 64x64 tent-filtered luma, "
        "with a quality score",
        param_name="hash_size",
        default_param=PDQ_SIZE,
        valid_params=lambda n: n == PDQ_SIZE,
        nbits=lambda n: n * n,
        compute=_compute,
        working_side=lambda n: FAST_WORKING_SIDE,
        max_distance=lambda n: MATCH_DISTANCE,
        dihedral=_dihedral,
        has_quality=True,
        min_quality=UNRELIABLE_BELOW,
        aliases=("pdqhash",),
    )
)
