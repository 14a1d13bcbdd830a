"""Which stored hashes are unreliable: searches skip them unless asked (`include_flagged=True`).

The rule is `lookalike.quality`'s: quality below the algorithm's minimum (50 for every algorithm
that has a quality score), or all bits equal. `MIN_QUALITY` serves the ClickHouse backend, which
computes flags for many rows at once; a test keeps it equal to every registered minimum.
"""

from __future__ import annotations

from lookalike.quality import DEFAULT_MIN_QUALITY as MIN_QUALITY
from lookalike.quality import is_flagged

__all__ = ["MIN_QUALITY", "is_flagged"]
