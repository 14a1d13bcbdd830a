"""Wavelet hashes (wHash): the low-low band of a Haar or Daubechies-4 decomposition against its median."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import pywt

from lookalike.algorithms.contrast import contrast_quality
from lookalike.algorithms.dihedral import DIHEDRAL_TRANSFORMS
from lookalike.algorithms.registry import Algorithm, register
from lookalike.hash import Hash

if TYPE_CHECKING:
    from lookalike.prepare import ImageView


def natural_scale(width: int, height: int, hash_size: int) -> int:
    """ImageHash's default image_scale: the largest power of two <= the shorter side (>= hash_size)."""
    return int(max(2 ** int(np.log2(min(width, height))), hash_size))


def wavelet_low_band(
    pixels: npt.NDArray[np.uint8], hash_size: int, wavelet: str = "haar", remove_max_haar_ll: bool = True
) -> npt.NDArray[np.float64]:
    """The LL band ImageHash thresholds, from a square power-of-two grayscale image."""
    image_scale = pixels.shape[0]
    ll_max_level = int(np.log2(image_scale))
    level = int(np.log2(hash_size))
    if hash_size & (hash_size - 1) or level > ll_max_level:
        raise ValueError(f"hash_size {hash_size} must be a power of 2 no larger than {image_scale}")
    data = pixels / 255.0
    with warnings.catch_warnings():
        # pywt warns that deep db4 levels see boundary effects; ImageHash's hash is defined with them.
        warnings.simplefilter("ignore", UserWarning)
        if remove_max_haar_ll:
            coeffs = list(pywt.wavedec2(data, "haar", level=ll_max_level))
            coeffs[0] *= 0
            data = pywt.waverec2(coeffs, "haar")
        return np.asarray(pywt.wavedec2(data, wavelet, level=ll_max_level - level)[0])


def wavelet_bits(low: npt.NDArray[np.float64]) -> npt.NDArray[np.bool_]:
    return np.asarray(low > np.median(low))


def wavelet_quality(low: npt.NDArray[np.float64], image_scale: int, hash_size: int) -> int:
    """Contrast quality of the LL band: at decomposition level L its coefficients are local means of
    pixels / 255 times 2**L, so the band's spread in grey levels is std * 255 / 2**L."""
    level = int(np.log2(image_scale)) - int(np.log2(hash_size))
    return contrast_quality(float(np.std(low)) * 255.0 / (1 << level))


def _scale(view: ImageView, hash_size: int) -> int:
    width, height = view.size
    return natural_scale(width, height, hash_size)


def _low_band(view: ImageView, hash_size: int, wavelet: str) -> npt.NDArray[np.float64]:
    def compute() -> npt.NDArray[np.float64]:
        scale = _scale(view, hash_size)
        return wavelet_low_band(view.gray(scale, scale), hash_size, wavelet)

    return view.memo(("whash-ll", hash_size, wavelet), compute)


def _hash(view: ImageView, hash_size: int, wavelet: str) -> Hash:
    low = _low_band(view, hash_size, wavelet)
    return Hash.from_bits(wavelet_bits(low), wavelet_quality(low, _scale(view, hash_size), hash_size))


def _haar(view: ImageView, hash_size: int) -> Hash:
    return _hash(view, hash_size, "haar")


def _haar_dihedral(view: ImageView, hash_size: int) -> list[Hash]:
    # Haar LL coefficients are block sums, so they rotate and flip with the image.
    bits = wavelet_bits(_low_band(view, hash_size, "haar"))
    return [Hash.from_bits(transform(bits)) for transform in DIHEDRAL_TRANSFORMS]


def _db4(view: ImageView, hash_size: int) -> Hash:
    return _hash(view, hash_size, "db4")


def _db4_nbits(hash_size: int) -> int:
    # pywt's db4 band grows by the filter length; for images >= 8 * hash_size the band is fixed.
    side = 1 << 16
    level = 16 - int(np.log2(hash_size))
    for _ in range(level):
        side = (side + 7) // 2
    return side * side


def _power_of_two(n: int) -> bool:
    return 2 <= n <= 256 and n & (n - 1) == 0


WHASH = register(
    Algorithm(
        name="whash",
        summary="wavelet hash (Haar): LL band of the image's multi-level Haar transform above its median",
        param_name="hash_size",
        default_param=8,
        valid_params=_power_of_two,
        nbits=lambda n: n * n,
        compute=_haar,
        working_side=lambda n: max(128, 16 * n),  # tuned: bench/fast_vs_exact.py, docs/throughput.md
        max_distance=lambda n: max(1, round(n * n * 10 / 64)),
        dihedral=_haar_dihedral,
        has_quality=True,
        min_quality=50,
        aliases=("whash_haar", "wavelet_hash"),
    )
)

WHASH_DB4 = register(
    Algorithm(
        name="whash_db4",
        summary="wavelet hash (Daubechies 4): LL band of a db4 decomposition above its median",
        param_name="hash_size",
        default_param=8,
        valid_params=_power_of_two,
        nbits=_db4_nbits,
        compute=_db4,
        working_side=lambda n: max(256, 16 * n),
        max_distance=lambda n: max(1, round(_db4_nbits(n) * 10 / 64)),
        has_quality=True,
        min_quality=50,
    )
)
