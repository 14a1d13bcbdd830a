"""Which stored hashes are unreliable: searches skip them unless asked (`include_flagged=True`).

The rule is `lookalike.quality`'s: quality below the algorithm's minimum (50 for every algorithm
that has a quality score), or all bits equal. `MIN_QUALITY` serves the ClickHouse backend, which
computes flags for many rows at once; a test keeps it equal to every registered minimum.
`flagged_words` applies the same rule to a whole array of hashes (SQLite's `add_words`).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from lookalike.quality import DEFAULT_MIN_QUALITY as MIN_QUALITY
from lookalike.quality import is_flagged, min_quality
from lookalike.search.bits import popcount


def flagged_words(
    words: npt.NDArray[np.uint64],
    nbits: int,
    quality: npt.NDArray[np.float64] | None = None,
    algorithm: str | None = None,
) -> npt.NDArray[np.bool_]:
    """`is_flagged` for an (n, words) array of `algorithm`'s hashes at once (quality NaN = none)."""
    ones = popcount(words).sum(axis=1, dtype=np.int64)
    flagged: npt.NDArray[np.bool_] = (ones == 0) | (ones == nbits)
    if quality is not None:
        minimum = min_quality(algorithm)
        flagged |= np.nan_to_num(quality, nan=minimum) < minimum
    return flagged


__all__ = ["MIN_QUALITY", "flagged_words", "is_flagged"]
