"""A second look at a pair its stored keypoints could not verify.

An index keeps 112 keypoints of a picture; a copy that keeps a third of it (a heavy uneven crop)
covers 30-40 of them, and verification then finds 8-11 inliers where it needs more. When such a
pair came close (`verify.NearMiss`: most of its few matches fit one transform, where two different
pictures share a handful of chance matches) and the stored picture's file is at hand, the pair is
verified again against every keypoint of that file (`lookalike.local.at_hand`), with the same
checks. A search's query brings its own picture's keypoints; a duplicate search's query is a
stored entry too, so its file is read as well. Reading and extracting a file costs about 20 ms,
so a query gets a bounded number of second looks (and a duplicate search's batch two a query
at most, `DUPLICATE_LOOKS_PER_QUERY`), each file read once per batch, and a pair
whose near matches lie in place gets none (`NearMiss.in_place`, most of them at the same place in
both frames): what two different pictures share in place is an app's bars and text (two
screenshots in one app), while a copy the compact keypoints miss was cropped, scaled or turned.

A picture pasted small into another (a picture in picture) does not even come near: of 112
keypoints spread over each frame, too few lie in the inset at its scale. A duplicate search that
searches wider than the default (`partial-copy`'s `local >= 10 of 32`) therefore also looks, within
the same budget, at each query's pair that shares most descriptors out of place
(`look_stored`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import numpy as np

from lookalike.local.features import LocalFeatures
from lookalike.local.verify import Alignment, NearMiss, verify

# a failed pair with this many matches on one transform is worth a second look; measured on the
# partial-copy benchmark (docs/local.md, "A second look"): chance matches between two different
# photos fit at most NEAR_INLIERS - 1, most copies the compact keypoints miss fit more
NEAR_INLIERS = 6
LOOKS_PER_QUERY = 4  # files read at most for one query
# a duplicate search's looks in one batch, at most, per query of the batch: its time stays within a
# bound of the batch's size whatever the collection holds (a burst of crops, many composites).
# One a query left heavy crops short where every photo has many copies (docs/local.md, "Two
# looks a query"); a collection without copies takes next to none either way
DUPLICATE_LOOKS_PER_QUERY = 2.0

SidedFeatures = tuple[LocalFeatures, LocalFeatures | None]  # a picture's, and its mirror image's
FeaturesAtHand = Callable[..., dict[int, SidedFeatures]]  # (entry ids, *, mirrored) -> features


def worth_a_look(near: NearMiss) -> bool:
    """Whether a failed pair came close enough, with its content moved."""
    return near.inliers >= NEAR_INLIERS and not near.in_place


class SecondLook:
    """Second looks for one batch of queries: which files were read, and how many looks each
    query has had."""

    def __init__(self, at_hand: FeaturesAtHand, budget: float | None = None) -> None:
        self._at_hand = at_hand
        self._read: dict[tuple[int, bool], SidedFeatures | None] = {}
        self._looks: Counter[int] = Counter()
        self._budget = budget  # looks of the whole batch, at most (None: only per query)
        self._taken = 0

    def _may_look(self, row: int, near: NearMiss) -> bool:
        return worth_a_look(near) and self._has_looks(row)

    def _has_looks(self, row: int) -> bool:
        """Whether query `row` and its batch have looks left."""
        return self._looks[row] < LOOKS_PER_QUERY and (self._budget is None or self._taken < self._budget)

    def _took(self, row: int) -> None:
        self._looks[row] += 1
        self._taken += 1

    def verify(
        self,
        row: int,
        entry: int,
        query: LocalFeatures,
        query_mirrored: LocalFeatures | None,
        near: NearMiss,
        min_inliers: int,
    ) -> Alignment | None:
        """The alignment of a search's query `row` on stored `entry` with every keypoint of its
        file, if the compact keypoints came `near`, the query has looks left and the file is at
        hand; else None."""
        if not self._may_look(row, near):
            return None
        full = self._file(entry, mirrored=False)
        if full is None:
            return None
        self._took(row)
        return verify(query, full[0], query_mirrored, min_inliers=min_inliers)

    def verify_stored(
        self, row: int, query_entry: int, entry: int, near: NearMiss, min_inliers: int
    ) -> Alignment | None:
        """A duplicate search's pair of two stored entries: the alignment of the query entry's
        file on the stored entry's file (every keypoint of each; the query's mirror image too
        where that side came closer), if their compact keypoints came `near`, the query has
        looks left and both files are at hand; else None."""
        if not self._may_look(row, near):
            return None
        return self._look_stored(row, query_entry, entry, near.mirrored, min_inliers)

    def look_stored(
        self, row: int, query_entry: int, entry: int, mirrored: bool, min_inliers: int
    ) -> Alignment | None:
        """`verify_stored` for a pair chosen on other grounds than a near miss (a wide duplicate
        search's best-sharing pair that its compact keypoints could not fit at all), within the
        same budget of looks."""
        if not self._has_looks(row):
            return None
        return self._look_stored(row, query_entry, entry, mirrored, min_inliers)

    def _look_stored(
        self, row: int, query_entry: int, entry: int, mirrored: bool, min_inliers: int
    ) -> Alignment | None:
        """Both files' keypoints (the query's mirror image too, with `mirrored`), one look taken."""
        mine = self._file(query_entry, mirrored=mirrored)
        theirs = None if mine is None else self._file(entry, mirrored=False)
        if mine is None or theirs is None:
            return None
        self._took(row)
        return verify(mine[0], theirs[0], mine[1], min_inliers=min_inliers)

    def _file(self, entry: int, *, mirrored: bool) -> SidedFeatures | None:
        """Every keypoint of `entry`'s file (and of its mirror image, with `mirrored`), read at
        most once per batch."""
        if not mirrored and (entry, True) in self._read:  # read with its mirror image already
            return self._read[entry, True]
        if (entry, mirrored) not in self._read:
            if mirrored and (entry, False) in self._read and self._read[entry, False] is None:
                return None  # not at hand
            found = self._at_hand(np.array([entry], dtype=np.int64), mirrored=mirrored).get(entry)
            self._read[entry, mirrored] = found
        return self._read[entry, mirrored]
