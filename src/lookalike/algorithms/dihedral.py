"""The eight rotations and flips of a square grid (the dihedral group D4), in one fixed order.

The order matches Meta's PDQ reference: original, rotate 90, rotate 180, rotate 270, flip
top-bottom (Meta's "flipx": mirror about the horizontal axis), flip left-right (Meta's "flipy"),
transpose (Meta's "flip-plus-1", about the main diagonal), transverse ("flip-minus-1", about the
other diagonal). Rotations are counter-clockwise, as Pillow's `Image.Transpose.ROTATE_90`. The
order was checked against `pdqhash.compute_dihedral` and Meta's `reg-test-input/dih/` images.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

DIHEDRAL_NAMES: tuple[str, ...] = (
    "original",
    "rotate90",
    "rotate180",
    "rotate270",
    "flip_top_bottom",
    "flip_left_right",
    "transpose",
    "transverse",
)

Grid = npt.NDArray[Any]

DIHEDRAL_TRANSFORMS: tuple[Callable[[Grid], Grid], ...] = (
    lambda a: a,
    lambda a: np.rot90(a, 1),
    lambda a: np.rot90(a, 2),
    lambda a: np.rot90(a, 3),
    lambda a: a[::-1, :],
    lambda a: a[:, ::-1],
    lambda a: a.T,
    lambda a: np.rot90(a, 2).T,
)

# Which transforms exchange width and height (so a w x h grid becomes h x w).
SWAPS_AXES: tuple[bool, ...] = (False, True, False, True, False, False, True, True)


def dct_dihedral(coefficients: Grid, index: int, first_frequency: int = 0) -> Grid:
    """The 2-D DCT-II of the transformed grid, from the DCT of the original.

    Reversing an axis multiplies frequency k on that axis by (-1)^k; a transpose transposes.
    `first_frequency` is the frequency of row and column 0 of `coefficients` (0 for pHash's
    block, 1 for PDQ's, which drops the DC term).
    """
    rows, cols = coefficients.shape
    row_sign = np.where((np.arange(rows) + first_frequency) % 2 == 0, 1, -1).astype(coefficients.dtype)[
        :, None
    ]
    col_sign = np.where((np.arange(cols) + first_frequency) % 2 == 0, 1, -1).astype(coefficients.dtype)[
        None, :
    ]
    c = coefficients
    if index == 0:
        return c
    if index == 1:  # rot90 ccw = transpose then flip top-bottom
        return np.asarray((c * col_sign).T)
    if index == 2:
        return np.asarray(c * row_sign * col_sign)
    if index == 3:  # rot270 ccw = transpose then flip left-right
        return np.asarray((c * row_sign).T)
    if index == 4:
        return np.asarray(c * row_sign)
    if index == 5:
        return np.asarray(c * col_sign)
    if index == 6:
        return np.asarray(c.T)
    if index == 7:
        return np.asarray((c * row_sign * col_sign).T)
    raise ValueError(f"dihedral index {index} out of range 0..7")
