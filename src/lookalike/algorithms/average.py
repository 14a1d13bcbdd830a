"""Average hash (aHash): each pixel of a tiny grayscale image against the mean."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from lookalike.algorithms.contrast import thumbnail_quality
from lookalike.algorithms.dihedral import DIHEDRAL_TRANSFORMS
from lookalike.algorithms.registry import Algorithm, register
from lookalike.hash import Hash

if TYPE_CHECKING:
    from lookalike.prepare import ImageView

MeanFn = Callable[[npt.NDArray[np.uint8]], float]


def average_bits(pixels: npt.NDArray[np.uint8], mean: MeanFn = np.mean) -> npt.NDArray[np.bool_]:
    """ImageHash's `average_hash` on an already reduced grayscale image."""
    return np.asarray(pixels > mean(pixels))


def _compute(view: ImageView, hash_size: int) -> Hash:
    pixels = view.gray(hash_size, hash_size)
    return Hash.from_bits(average_bits(pixels), thumbnail_quality(pixels))


def _dihedral(view: ImageView, hash_size: int) -> list[Hash]:
    pixels = view.gray(hash_size, hash_size)
    bits = average_bits(pixels)
    return [Hash.from_bits(transform(bits)) for transform in DIHEDRAL_TRANSFORMS]


AHASH = register(
    Algorithm(
        name="ahash",
        summary="average hash: pixels of an NxN grayscale thumbnail above their mean",
        param_name="hash_size",
        default_param=8,
        valid_params=lambda n: 2 <= n <= 64,
        nbits=lambda n: n * n,
        compute=_compute,
        working_side=lambda n: max(64, 8 * n),  # tuned: bench/fast_vs_exact.py, docs/throughput.md
        max_distance=lambda n: max(1, round(n * n * 10 / 64)),
        dihedral=_dihedral,
        has_quality=True,
        min_quality=50,
        aliases=("average_hash", "average"),
    )
)
