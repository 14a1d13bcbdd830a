"""Which stored hashes are unreliable: searches skip them unless asked (`include_flagged=True`).

TODO: replace this local rule with `lookalike.quality.is_flagged` once that module lands on main.
"""

from __future__ import annotations

from lookalike.hash import Hash

MIN_QUALITY = 50


def is_flagged(value: Hash) -> bool:
    """A hash is unreliable when its quality is below 50 (PDQ's rule) or its bits are all equal
    (a flat image: every flat image gets the same hash, so it matches everything flat)."""
    if value.quality is not None and value.quality < MIN_QUALITY:
        return True
    ones = value.popcount()
    return ones == 0 or ones == value.nbits
