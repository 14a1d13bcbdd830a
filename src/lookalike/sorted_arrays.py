"""Distinct values of arrays by sorting: NumPy 2's `np.unique` hashes, and on the millions of
probes and ids of a duplicate-search batch that is tens of times slower than a sort and a mask."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt


def distinct_sorted(ordered: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """The distinct values of an already sorted 1-D array, in order."""
    if len(ordered) < 2:
        return ordered
    fresh = np.empty(len(ordered), dtype=bool)
    fresh[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=fresh[1:])
    return ordered[fresh]


def sorted_unique(values: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """The sorted distinct values of a 1-D array (what `np.unique(values)` returns)."""
    return distinct_sorted(np.sort(values))
