"""pHash of the image without its uniform borders (letterbox bars, padding, frames, UI chrome).

The same bits as `phash` on `lookalike.trim.trim_borders(image)`, with dihedral variants, under
its own name so that an index stores it next to the plain pHash and a matcher rule can ask for
either: "phash:16 <= 36 or phash_trimmed:16 <= 36".
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
from PIL import Image

from lookalike.algorithms.dihedral import dct_dihedral
from lookalike.algorithms.perceptual import HIGHFREQ_FACTOR, perceptual_bits_from_dct, perceptual_dct
from lookalike.algorithms.registry import Algorithm, register
from lookalike.hash import Hash
from lookalike.trim import trim_borders

if TYPE_CHECKING:
    from lookalike.prepare import ImageView


def _dct(view: ImageView, hash_size: int) -> npt.NDArray[np.float64]:
    def compute() -> npt.NDArray[np.float64]:
        side = hash_size * HIGHFREQ_FACTOR
        trimmed = view.memo("trimmed-gray", lambda: trim_borders(view.gray_image()))
        pixels = np.asarray(trimmed.resize((side, side), Image.Resampling.LANCZOS))
        return perceptual_dct(pixels)

    return view.memo(("phash-trimmed-dct", hash_size), compute)


def _compute(view: ImageView, hash_size: int) -> Hash:
    return Hash.from_bits(perceptual_bits_from_dct(_dct(view, hash_size), hash_size))


def _dihedral(view: ImageView, hash_size: int) -> list[Hash]:
    low = _dct(view, hash_size)[:hash_size, :hash_size]
    variants = []
    for index in range(8):
        block = dct_dihedral(low, index)
        variants.append(Hash.from_bits(block > np.median(block)))
    return variants


PHASH_TRIMMED = register(
    Algorithm(
        name="phash_trimmed",
        summary="pHash of the image with its uniform borders (bars, padding, frames) trimmed",
        param_name="hash_size",
        default_param=16,
        valid_params=lambda n: 2 <= n <= 64,
        nbits=lambda n: n * n,
        compute=_compute,
        working_side=lambda n: max(128, 16 * n),
        max_distance=lambda n: max(1, round(n * n * 10 / 64)),
        dihedral=_dihedral,
    )
)
