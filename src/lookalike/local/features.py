"""Local features: ORB keypoints and their 256-bit binary descriptors, at a fixed working size.

Global hashes see a whole picture; a crop, a screenshot around a photo or a collage is a different
whole. Keypoints with descriptors (OpenCV's ORB: FAST corners, rotation-aware BRIEF) are local:
the part a copy keeps still carries the same descriptors at the same relative places, which
`lookalike.local.verify` checks with a fitted transform.

Every image is brought to the same working size (its longer side `WORKING_SIDE` pixels) before
detection, so a copy resized by any factor yields keypoints at the same scales as its original.
What an index stores is a compact set (`STORED_KEYPOINTS`, under 4 KB with their positions),
chosen by strength but spread over a 4 x 4 grid so that any large part of the picture keeps some,
and a fifth of it chosen by strength within each pyramid level, so that a copy shown smaller than
its original (a screenshot's photo, an inset, a collage's cell) still meets some of it;
a query may use more (`QUERY_KEYPOINTS`).

A search's own picture may also carry a finer set (`extract(..., finer=True)`): its keypoints
plus `FINER_KEYPOINTS` found on `FINER_LEVELS` upscaled pyramid levels of the same working image.
A small inset (a photo at a third of a composite) is about 170 pixels wide at the working size,
and ORB's pyramid does not reach the scale its original was stored at; the finer set does.
Verification tries it only when the standard keypoints fail (`lookalike.local.verify`): used
everywhere, its extra keypoints bring extra wrong matches and cost heavy crops.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from lookalike.errors import LookalikeError

LOCAL_REVISION = 4  # raised whenever extraction changes, so caches never serve older keypoints
WORKING_SIDE = 512
DETECTED_KEYPOINTS = 1000
QUERY_KEYPOINTS = 1000
FINER_KEYPOINTS = 1000  # added to a search's own keypoints for its fallback verification
FINER_LEVELS = 4  # pyramid levels above the working size (scales 1.2 ** 1 .. 1.2 ** 4)
STORED_KEYPOINTS = 112  # 4,039 bytes with their positions: the most under 4 KB
GRID = 4
# of a compact set, the share chosen by strength within each pyramid level rather than overall:
# the coarse keypoints a copy shown smaller than its original still has (docs/local.md,
# "Every scale in the stored keypoints")
SCALE_SHARE = 0.2
FAST_THRESHOLD = 10
MIN_SIDE = 24  # smaller images have no room for ORB's 31-pixel patches
_FORMAT = 1
_HEADER = struct.Struct("<BHHH")  # format, working width, working height, keypoint count


# Which local features to compute: none, those an index stores (True), or a search's (`"query"`:
# the same plus the finer fallback set)
LocalWanted = bool | Literal["query"]


class LocalFeaturesUnavailable(LookalikeError):
    """OpenCV is not installed: `pip install 'lookalike[local]'`."""


@dataclass(frozen=True)
class LocalFeatures:
    """Keypoints of one image: positions in working-size pixels (x, y), descriptors (n, 32) uint8,
    and the working size (width, height) the positions refer to. A search's own picture may carry
    `finer`: the same keypoints plus finer ones, for a second verification (never stored)."""

    points: npt.NDArray[np.float32]
    descriptors: npt.NDArray[np.uint8]
    size: tuple[int, int]
    finer: LocalFeatures | None = field(default=None, compare=False, repr=False)

    def __len__(self) -> int:
        return len(self.points)

    def to_bytes(self) -> bytes:
        """A compact serialisation: positions as uint16 in 1/8-pixel steps (they are then exact
        to 0.06 pixels), descriptors as they are."""
        fixed = np.clip(np.rint(self.points * 8), 0, 65535).astype("<u2")
        header = _HEADER.pack(_FORMAT, self.size[0], self.size[1], len(self.points))
        return header + fixed.tobytes() + np.ascontiguousarray(self.descriptors).tobytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> LocalFeatures:
        version, width, height, count = _HEADER.unpack_from(data)
        if version != _FORMAT or len(data) != _HEADER.size + count * (4 + 32):
            raise ValueError("not lookalike local features")
        start = _HEADER.size
        fixed = np.frombuffer(data, "<u2", count * 2, start).reshape(count, 2)
        points = (fixed / np.float32(8)).astype(np.float32)
        descriptors = np.frombuffer(data, np.uint8, count * 32, start + count * 4).reshape(count, 32)
        return cls(points, descriptors.copy(), (width, height))

    def compact(self, keep: int = STORED_KEYPOINTS) -> LocalFeatures:
        """The first `keep` keypoints (the order `extract` gives: strongest per grid cell first)."""
        return LocalFeatures(self.points[:keep], self.descriptors[:keep], self.size)


def working_gray(gray: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """A grayscale image scaled so its longer side is `WORKING_SIDE` (area filter down, linear up)."""
    cv2 = _opencv()
    height, width = gray.shape
    scale = WORKING_SIDE / max(height, width)
    if scale == 1:
        return gray
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized: npt.NDArray[np.uint8] = cv2.resize(gray, size, interpolation=interpolation)
    return resized


def extract(
    gray: npt.NDArray[np.uint8], keep: int = QUERY_KEYPOINTS, *, finer: bool = False
) -> LocalFeatures:
    """ORB keypoints of an 8-bit grayscale image (any size), ordered so that any prefix is spread
    over the picture (rank within its grid cell first, strength second) and over its scales (a
    fifth of it by strength within each pyramid level). With `finer`, the result
    carries the finer set for a search's fallback verification (see the module's docstring)."""
    cv2 = _opencv()
    if min(gray.shape) < MIN_SIDE:
        return _empty(gray.shape)
    image = np.ascontiguousarray(working_gray(gray))
    orb = cv2.ORB_create(nfeatures=DETECTED_KEYPOINTS, fastThreshold=FAST_THRESHOLD)
    points, strength, descriptors, level = _detect(orb, image)
    order = scale_mixed_order(
        spread_order(points, strength, image.shape),
        spread_order(points, level_rank(strength, level), image.shape),
    )[:keep]
    height, width = image.shape
    features = LocalFeatures(points[order], np.ascontiguousarray(descriptors[order]), (width, height))
    if not finer:
        return features
    upscaled = cv2.ORB_create(
        nfeatures=FINER_KEYPOINTS, fastThreshold=FAST_THRESHOLD, nlevels=FINER_LEVELS, firstLevel=FINER_LEVELS
    )
    more_points, more_strength, more_descriptors, _ = _detect(upscaled, image)
    all_points = np.concatenate([features.points, more_points])
    all_descriptors = np.concatenate([features.descriptors, more_descriptors])
    combined = spread_order(all_points, np.concatenate([strength[order], more_strength]), image.shape)
    finer_set = LocalFeatures(
        all_points[combined], np.ascontiguousarray(all_descriptors[combined]), features.size
    )
    return replace(features, finer=finer_set)


def _detect(
    orb: Any, image: npt.NDArray[np.uint8]
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32], npt.NDArray[np.uint8], npt.NDArray[np.int64]]:
    """Positions, strengths, descriptors and pyramid levels of one ORB detector's keypoints
    (empty arrays if none)."""
    keypoints, descriptors = orb.detectAndCompute(image, None)
    if descriptors is None or not keypoints:
        empty = np.zeros(0, np.int64)
        return np.zeros((0, 2), np.float32), np.zeros(0, np.float32), np.zeros((0, 32), np.uint8), empty
    points = np.array([k.pt for k in keypoints], dtype=np.float32)
    strength = np.array([k.response for k in keypoints], dtype=np.float32)
    level = np.array([k.octave for k in keypoints], dtype=np.int64)
    return points, strength, descriptors, level


def level_rank(response: npt.NDArray[np.float32], level: npt.NDArray[np.int64]) -> npt.NDArray[np.float32]:
    """Each keypoint's place among the keypoints of its own pyramid level (1 for the strongest,
    down towards 0). ORB's corner response is larger at the finer levels: ranked overall, a
    compact set was nearly all fine keypoints (97 of 112 at the finest level on a star field),
    which a copy shown at half its original's size or less no longer has."""
    _, which, sizes = np.unique(level, return_inverse=True, return_counts=True)
    share = rank_within(level, response).astype(np.float32) / sizes[which].astype(np.float32)
    strength: npt.NDArray[np.float32] = (1.0 - share).astype(np.float32)
    return strength


def scale_mixed_order(
    by_strength: npt.NDArray[np.int64], by_level: npt.NDArray[np.int64], share: float = SCALE_SHARE
) -> npt.NDArray[np.int64]:
    """Two orders of the same keypoints merged, each keypoint once: `share` of every prefix from
    `by_level`, the rest from `by_strength`, so a compact set (a prefix) holds both."""
    first, second = by_strength.tolist(), by_level.tolist()
    taken = [False] * len(first)
    merged: list[int] = []
    from_level = i = j = 0
    while len(merged) < len(first):  # ~1000 keypoints: a short loop over Python lists
        if from_level < share * (len(merged) + 1):
            while taken[second[j]]:
                j += 1
            chosen = second[j]
            from_level += 1
        else:
            while taken[first[i]]:
                i += 1
            chosen = first[i]
        taken[chosen] = True
        merged.append(chosen)
    return np.array(merged, dtype=np.int64)


def spread_order(
    points: npt.NDArray[np.float32], strength: npt.NDArray[np.float32], shape: tuple[int, int]
) -> npt.NDArray[np.int64]:
    """Keypoint order that takes the strongest of each grid cell, then the second of each, ...:
    a crop or a corner of the picture keeps its share of any prefix."""
    height, width = shape
    cells = (np.minimum(points[:, 1] * GRID // height, GRID - 1) * GRID) + np.minimum(
        points[:, 0] * GRID // width, GRID - 1
    )
    order: npt.NDArray[np.int64] = np.lexsort((-strength, rank_within(cells, strength)))
    return order


def rank_within(groups: npt.NDArray[Any], strength: npt.NDArray[np.float32]) -> npt.NDArray[np.int64]:
    """Each keypoint's place among those of its group (0 for the strongest; ties in index order)."""
    count = len(groups)
    by_group = np.lexsort((np.arange(count), -strength, groups))
    sorted_groups = groups[by_group]
    rank = np.empty(count, dtype=np.int64)
    rank[by_group] = np.arange(count) - np.searchsorted(sorted_groups, sorted_groups, side="left")
    return rank


def mirrored(gray: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """The image flipped left to right (ORB descriptors are not mirror-invariant)."""
    flipped: npt.NDArray[np.uint8] = np.ascontiguousarray(gray[:, ::-1])
    return flipped


def _empty(shape: tuple[int, ...]) -> LocalFeatures:
    height, width = shape[:2]
    return LocalFeatures(np.zeros((0, 2), np.float32), np.zeros((0, 32), np.uint8), (width, height))


def local_features_available() -> bool:
    """Whether OpenCV (the `lookalike[local]` extra) is installed."""
    try:
        import cv2  # noqa: F401
    except ImportError:
        return False
    return True


def _opencv() -> Any:
    try:
        import cv2
    except ImportError:
        raise LocalFeaturesUnavailable("local features need OpenCV: pip install 'lookalike[local]'") from None
    return cv2
