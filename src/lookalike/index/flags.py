"""Which stored hashes are unreliable: searches skip them unless asked (`include_flagged=True`).

TODO: replace this local rule with `lookalike.quality.is_flagged` once that module lands on main.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from lookalike.hash import Hash
from lookalike.search.bits import popcount

MIN_QUALITY = 50


def is_flagged(value: Hash) -> bool:
    """A hash is unreliable when its quality is below 50 (PDQ's rule) or its bits are all equal
    (a flat image: every flat image gets the same hash, so it matches everything flat)."""
    if value.quality is not None and value.quality < MIN_QUALITY:
        return True
    ones = value.popcount()
    return ones == 0 or ones == value.nbits


def flagged_words(
    words: npt.NDArray[np.uint64], nbits: int, quality: npt.NDArray[np.float64] | None = None
) -> npt.NDArray[np.bool_]:
    """`is_flagged` for an (n, words) array of hashes at once (quality NaN = none)."""
    ones = popcount(words).sum(axis=1, dtype=np.int64)
    flagged: npt.NDArray[np.bool_] = (ones == 0) | (ones == nbits)
    if quality is not None:
        flagged |= np.nan_to_num(quality, nan=MIN_QUALITY) < MIN_QUALITY
    return flagged
