"""A search's second look at a pair its stored keypoints could not verify.

An index keeps 112 keypoints of a picture; a copy that keeps a third of it (a heavy uneven crop)
covers 30-40 of them, and verification then finds 8-11 inliers where it needs more. When such a
pair came close (`near_inliers`: most of its few matches fit one transform, where two different
pictures share a handful of chance matches) and the stored picture's file is at hand, the pair is
verified again against every keypoint of that file (`lookalike.local.at_hand`), with the same
checks. Reading and extracting a file costs about 20 ms, so a query gets a bounded number of
second looks, each file read once per batch.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from lookalike.local.features import LocalFeatures
from lookalike.local.verify import Alignment, near_inliers, verify

# a failed pair with this many matches on one transform is worth a second look; measured on the
# partial-copy benchmark (docs/local.md, "A second look"): chance matches between two different
# photos fit at most NEAR_INLIERS - 1, most copies the compact keypoints miss fit more
NEAR_INLIERS = 6
LOOKS_PER_QUERY = 4  # files read at most for one query

FeaturesAtHand = Callable[[npt.NDArray[np.int64]], dict[int, LocalFeatures]]


class SecondLook:
    """Second looks for one batch of queries: which files were read, and how many looks each
    query has had."""

    def __init__(self, at_hand: FeaturesAtHand) -> None:
        self._at_hand = at_hand
        self._read: dict[int, LocalFeatures | None] = {}
        self._looks: Counter[int] = Counter()

    def verify(
        self,
        row: int,
        entry: int,
        query: LocalFeatures,
        stored: LocalFeatures,
        query_mirrored: LocalFeatures | None,
        min_inliers: int,
    ) -> Alignment | None:
        """The alignment of query `row` on stored `entry` with every keypoint of its file, if
        the compact `stored` keypoints came close, the query has looks left and the file is at
        hand; else None."""
        if self._looks[row] >= LOOKS_PER_QUERY or near_inliers(query, stored, query_mirrored) < NEAR_INLIERS:
            return None
        if entry not in self._read:
            self._read[entry] = self._at_hand(np.array([entry], dtype=np.int64)).get(entry)
        full = self._read[entry]
        if full is None:
            return None
        self._looks[row] += 1
        return verify(query, full, query_mirrored, min_inliers=min_inliers)
