"""Perceptual hashes (pHash): low-frequency DCT coefficients against their median (or mean)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import scipy.fftpack

from lookalike.algorithms.contrast import thumbnail_quality
from lookalike.algorithms.dihedral import dct_dihedral
from lookalike.algorithms.registry import Algorithm, register
from lookalike.candidates.keys import dct_layout
from lookalike.hash import Hash

if TYPE_CHECKING:
    from lookalike.prepare import ImageView

HIGHFREQ_FACTOR = 4


def perceptual_dct(pixels: npt.NDArray[np.uint8]) -> npt.NDArray[np.float64]:
    """2-D DCT-II exactly as ImageHash computes it (scipy.fftpack, rows then columns)."""
    return np.asarray(scipy.fftpack.dct(scipy.fftpack.dct(pixels, axis=0), axis=1))


def median(values: npt.NDArray[np.float64]) -> float:
    """`np.median` of a small array, bit for bit (the middle value, or the two middle values
    added and halved as its mean does), from one sort: a hash's 64-256 coefficients sort in a
    few microseconds, where `np.median`'s generic path costs far more per call, and an image's
    preset hashes take about 75 medians (crop, tilt and dihedral variants)."""
    ordered = np.sort(values, axis=None)
    half = ordered.size // 2
    if ordered.size % 2:
        return float(ordered[half])
    return float((ordered[half - 1] + ordered[half]) / 2)


def above_median(block: npt.NDArray[np.float64]) -> npt.NDArray[np.bool_]:
    return np.asarray(block > median(block))


def perceptual_bits_from_dct(dct: npt.NDArray[np.float64], hash_size: int) -> npt.NDArray[np.bool_]:
    return above_median(dct[:hash_size, :hash_size])


def dihedral_hashes_from_dct(
    dct: npt.NDArray[np.float64], hash_size: int, indexes: Sequence[int] = range(8)
) -> list[Hash]:
    """The pHashes of rotated / flipped copies (lookalike.algorithms.dihedral order), from the
    original's DCT alone: a flip changes the sign of odd frequencies, a rotation transposes."""
    low = dct[:hash_size, :hash_size]
    return [Hash.from_bits(above_median(dct_dihedral(low, index))) for index in indexes]


def perceptual_bits(pixels: npt.NDArray[np.uint8], hash_size: int) -> npt.NDArray[np.bool_]:
    """ImageHash's `phash` on a (4N x 4N) grayscale image."""
    return perceptual_bits_from_dct(perceptual_dct(pixels), hash_size)


def perceptual_simple_bits(pixels: npt.NDArray[np.uint8], hash_size: int) -> npt.NDArray[np.bool_]:
    """ImageHash's `phash_simple`: 1-D DCT along rows, coefficients 1..N against their mean."""
    dct = scipy.fftpack.dct(pixels)
    low = dct[:hash_size, 1 : hash_size + 1]
    return np.asarray(low > low.mean())


def _pixels(view: ImageView, hash_size: int) -> npt.NDArray[np.uint8]:
    size = hash_size * HIGHFREQ_FACTOR
    return view.gray(size, size)


def _dct(view: ImageView, hash_size: int) -> npt.NDArray[np.float64]:
    return view.memo(("phash-dct", hash_size), lambda: perceptual_dct(_pixels(view, hash_size)))


def _compute(view: ImageView, hash_size: int) -> Hash:
    bits = perceptual_bits_from_dct(_dct(view, hash_size), hash_size)
    return Hash.from_bits(bits, thumbnail_quality(_pixels(view, hash_size)))


def _dihedral(view: ImageView, hash_size: int) -> list[Hash]:
    return dihedral_hashes_from_dct(_dct(view, hash_size), hash_size)


def _compute_simple(view: ImageView, hash_size: int) -> Hash:
    pixels = _pixels(view, hash_size)
    return Hash.from_bits(perceptual_simple_bits(pixels, hash_size), thumbnail_quality(pixels))


def _max_distance(n: int) -> int:
    return max(1, round(n * n * 10 / 64))


PHASH = register(
    Algorithm(
        name="phash",
        summary="perceptual hash: NxN low DCT frequencies of a 4Nx4N thumbnail above their median",
        param_name="hash_size",
        default_param=8,
        valid_params=lambda n: 2 <= n <= 64,
        nbits=lambda n: n * n,
        compute=_compute,
        working_side=lambda n: max(128, 16 * n),
        max_distance=_max_distance,
        dihedral=_dihedral,
        has_quality=True,
        min_quality=50,
        aliases=("perceptual_hash",),
        candidate_layout=dct_layout,
    )
)

PHASH_SIMPLE = register(
    Algorithm(
        name="phash_simple",
        summary="simple perceptual hash: row-wise DCT coefficients 1..N above their mean",
        param_name="hash_size",
        default_param=8,
        valid_params=lambda n: 2 <= n <= 64,
        nbits=lambda n: n * n,
        compute=_compute_simple,
        working_side=lambda n: max(128, 16 * n),
        max_distance=_max_distance,
        has_quality=True,
        min_quality=50,
    )
)
