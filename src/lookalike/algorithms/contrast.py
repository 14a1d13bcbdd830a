"""A cheap quality score (0-100) for the hashes made from a small grayscale thumbnail: its contrast.

When the thumbnail a hash thresholds is nearly flat, its bits are decided by noise (a re-encode or a
resize flips them) and the hash should not be matched on. The score is the standard deviation of
the thumbnail's grey levels (0-255), at 12.5 points per grey level, capped at 100: a thumbnail
whose pixels spread by less than 4 grey levels scores below 50 and is flagged (`lookalike.quality`);
8 grey levels or more scores 100. A flat image scores 0. It is computed from the very pixels the
hash was computed from (aHash's 8x8, dHash's 9x8, pHash's 32x32, wHash's low band), so it costs
next to nothing, and it judges each hash at its own resolution: a uniform texture (gravel, brick)
is flat at 8x8 but not at 32x32.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FULL_QUALITY_SPREAD = 8.0  # grey levels of standard deviation that score 100


def contrast_quality(spread: float) -> int:
    """Quality 0-100 from a thumbnail's standard deviation in grey levels."""
    return max(0, min(100, int(100.0 * spread / FULL_QUALITY_SPREAD)))


def thumbnail_quality(pixels: npt.ArrayLike) -> int:
    """Quality 0-100 of a grayscale thumbnail (uint8 grey levels): its contrast."""
    return contrast_quality(float(np.std(np.asarray(pixels), dtype=np.float64)))
