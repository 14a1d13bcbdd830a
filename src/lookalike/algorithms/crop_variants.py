"""pHash with crop variants: the hash of the whole image, carrying the hashes of its own crops.

A copy cut from a photo (5-20% off one side, or around it) hashes like the photo's matching crop,
so a query that carries its crops as variants finds stored copies cut from it: the index compares
every query variant with the stored hash, as it does for dihedral variants. The stored hash is the
plain pHash of the whole image, so `phash_crops:16` and `phash:16` store the same bits.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PIL import Image

from lookalike.algorithms.perceptual import HIGHFREQ_FACTOR, perceptual_bits
from lookalike.algorithms.registry import Algorithm, register
from lookalike.hash import Hash

if TYPE_CHECKING:
    from lookalike.prepare import ImageView

CROP_FRACTIONS: tuple[float, ...] = (0.05, 0.1, 0.2)
CROP_SIDES: tuple[str, ...] = ("left", "right", "top", "bottom", "centre")


def crop_box(size: tuple[int, int], side: str, fraction: float) -> tuple[int, int, int, int]:
    """The box left after cutting `fraction` off one side (or half of it off every side)."""
    width, height = size
    dx, dy = round(width * fraction), round(height * fraction)
    boxes = {
        "left": (dx, 0, width, height),
        "right": (0, 0, width - dx, height),
        "top": (0, dy, width, height),
        "bottom": (0, 0, width, height - dy),
        "centre": (dx // 2, dy // 2, width - (dx - dx // 2), height - (dy - dy // 2)),
    }
    return boxes[side]


def _hash_of(gray: Image.Image, hash_size: int) -> Hash:
    side = hash_size * HIGHFREQ_FACTOR
    pixels = gray.resize((side, side), Image.Resampling.LANCZOS)
    import numpy as np

    return Hash.from_bits(perceptual_bits(np.asarray(pixels), hash_size))


def _compute(view: ImageView, hash_size: int) -> Hash:
    gray = view.gray_image()
    side = hash_size * HIGHFREQ_FACTOR
    whole = Hash.from_bits(perceptual_bits(view.gray(side, side), hash_size))
    variants = [whole]
    for fraction in CROP_FRACTIONS:
        for where in CROP_SIDES:
            variants.append(_hash_of(gray.crop(crop_box(gray.size, where, fraction)), hash_size))
    return whole.with_variants(variants)


PHASH_CROPS = register(
    Algorithm(
        name="phash_crops",
        summary="pHash of the whole image carrying the pHashes of its 5/10/20% crops as variants",
        param_name="hash_size",
        default_param=16,
        valid_params=lambda n: 2 <= n <= 64,
        nbits=lambda n: n * n,
        compute=_compute,
        working_side=lambda n: max(128, 16 * n),
        max_distance=lambda n: max(1, round(n * n * 10 / 64)),
    )
)
