"""Difference hashes (dHash): is each pixel brighter than its neighbour, across or down."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from lookalike.algorithms.contrast import thumbnail_quality
from lookalike.algorithms.dihedral import DIHEDRAL_TRANSFORMS, SWAPS_AXES
from lookalike.algorithms.registry import Algorithm, register
from lookalike.hash import Hash

if TYPE_CHECKING:
    from lookalike.prepare import ImageView


def difference_bits(pixels: npt.NDArray[np.uint8]) -> npt.NDArray[np.bool_]:
    """ImageHash's `dhash` on an (N rows, N+1 columns) grayscale image."""
    return np.asarray(pixels[:, 1:] > pixels[:, :-1])


def difference_vertical_bits(pixels: npt.NDArray[np.uint8]) -> npt.NDArray[np.bool_]:
    """ImageHash's `dhash_vertical` on an (N+1 rows, N columns) grayscale image."""
    return np.asarray(pixels[1:, :] > pixels[:-1, :])


def _wide(view: ImageView, n: int) -> npt.NDArray[np.uint8]:
    return view.gray(n + 1, n)  # N rows, N+1 columns


def _tall(view: ImageView, n: int) -> npt.NDArray[np.uint8]:
    return view.gray(n, n + 1)  # N+1 rows, N columns


def _horizontal(view: ImageView, n: int) -> Hash:
    pixels = _wide(view, n)
    return Hash.from_bits(difference_bits(pixels), thumbnail_quality(pixels))


def _vertical(view: ImageView, n: int) -> Hash:
    pixels = _tall(view, n)
    return Hash.from_bits(difference_vertical_bits(pixels), thumbnail_quality(pixels))


def _horizontal_dihedral(view: ImageView, n: int) -> list[Hash]:
    # dHash of a transformed image compares neighbours along its rows; a transform that swaps
    # axes turns the original's tall thumbnail into the transformed image's wide one.
    wide, tall = _wide(view, n), _tall(view, n)
    return [
        Hash.from_bits(difference_bits(transform(tall if swaps else wide)))
        for transform, swaps in zip(DIHEDRAL_TRANSFORMS, SWAPS_AXES, strict=True)
    ]


def _vertical_dihedral(view: ImageView, n: int) -> list[Hash]:
    wide, tall = _wide(view, n), _tall(view, n)
    return [
        Hash.from_bits(difference_vertical_bits(transform(wide if swaps else tall)))
        for transform, swaps in zip(DIHEDRAL_TRANSFORMS, SWAPS_AXES, strict=True)
    ]


def _common(n: int) -> int:
    return max(1, round(n * n * 10 / 64))


DHASH = register(
    Algorithm(
        name="dhash",
        summary="difference hash: brighter-than-right-neighbour bits of an (N+1)xN thumbnail",
        param_name="hash_size",
        default_param=8,
        valid_params=lambda n: 2 <= n <= 64,
        nbits=lambda n: n * n,
        compute=_horizontal,
        working_side=lambda n: max(128, 16 * n),
        max_distance=_common,
        dihedral=_horizontal_dihedral,
        has_quality=True,
        min_quality=50,
        aliases=("difference_hash",),
    )
)

DHASH_VERTICAL = register(
    Algorithm(
        name="dhash_vertical",
        summary="vertical difference hash: brighter-than-lower-neighbour bits of an Nx(N+1) thumbnail",
        param_name="hash_size",
        default_param=8,
        valid_params=lambda n: 2 <= n <= 64,
        nbits=lambda n: n * n,
        compute=_vertical,
        working_side=lambda n: max(128, 16 * n),
        max_distance=_common,
        dihedral=_vertical_dihedral,
        has_quality=True,
        min_quality=50,
    )
)
