"""Geometric verification: do two images share a region, and where?

Descriptors are matched both ways (each query keypoint's nearest stored one passing Lowe's ratio
test, each stored keypoint used once), then an affine transform is fitted with RANSAC. A pair is
verified when enough matches agree with one plausible transform (scale within 1/8..8, no strong
shear) and they are spread over a real area of both pictures rather than bunched on a logo or a
caption two different pictures share. Inliers count as evidence once per place: ORB finds a
letter's corner at several pyramid levels, and two screenshots of different photos in the same
app agree on a line of its text many times over; enough distinct places must agree, and not all
on one line, where a single chance match off it would fix the transform. The transform then says
where each image lies in the other: the quadrilateral of the other's frame, in coordinates
relative to the image (0..1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from lookalike.local.features import LocalFeatures, _opencv

MIN_INLIERS = 12
RATIO = 0.85
REPROJECTION_PIXELS = 4.0  # at the working size (512 pixels on the longer side)
MIN_SCALE, MAX_SCALE = 1 / 8, 8.0
MAX_ANISOTROPY = 3.0  # ratio of the transform's two singular values (aspect squash allowed)
MIN_SPREAD = 0.02  # inliers' convex hull over the overlap (or its keypoints' hull), the smaller side
MOST_MATCHES = 0.5  # inliers among the matches for the spread to be measured over the keypoints' hull
GRID = 4  # agreement: the covered part of the stored image cut into GRID x GRID cells
MIN_COVERAGE = 0.55  # of the cells inside the overlap that hold stored keypoints, the share with inliers
# A stored picture shown smaller in the query (an inset, a collage's cell) has lost the finest
# scales its stored keypoints were found at: fewer cells can agree, down to SMALL_COPY_COVERAGE
# at half its working size or less (`agreement_needed`)
SMALL_COPY_SCALE = 2.0  # stored pixels per query pixel
SMALL_COPY_COVERAGE = 0.4
PLACE_PIXELS = 8.0  # inliers this close in both images are one place (a corner at several scales)
MIN_PLACES_SHARE = 0.5  # distinct inlier places needed, as a share of the inliers needed
# distinct places, all but one, within this distance of one line (relative to the side of the
# overlap, sqrt of its area): a line of text or a bar, and the transform across it is chance
MIN_OFF_LINE = 0.01
# matches this close to the same place in both frames (share of the side, median over the
# inliers) are content left where it was: an app's bars and text in two screenshots, not a copy
# that was cropped, scaled or turned
IN_PLACE = 0.01


Quad = npt.NDArray[np.float64]  # (4, 2) corners, relative coordinates (x / width, y / height)


@dataclass(frozen=True)
class Alignment:
    """How a query image lies on a stored one.

    `transform` maps query working-size pixels to stored working-size pixels (2 x 3 affine; for
    a mirrored match it applies after flipping the query left to right). `stored_region` is the
    query's frame drawn on the stored image, `query_region` the stored image's frame drawn on
    the query, both clipped to the image and relative (0..1)."""

    inliers: int
    matches: int
    transform: npt.NDArray[np.float64]
    mirrored: bool
    scale: float  # stored pixels per query pixel, in each image's own working size
    rotation: float  # degrees, counter-clockwise
    stored_region: Quad
    query_region: Quad
    stored_coverage: float  # share of the stored picture the query covers
    query_coverage: float  # share of the query the stored picture covers
    # of the stored image's grid cells inside the overlap that hold keypoints, the share where
    # inliers are: a real copy agrees all over; two pictures sharing a caption, a logo or an
    # app's frame agree only there
    agreement: float
    places: int  # distinct places among the inliers (a corner found at several scales is one)
    # most inliers at the same place in both frames (`NearMiss.in_place`): what two different
    # pictures share in place is an app's bars and text, or a caption
    in_place: bool = False


def can_judge(query: LocalFeatures, stored: LocalFeatures, min_inliers: int = MIN_INLIERS) -> bool:
    """Whether keypoints can tell a copy from another picture at all: each side needs as many
    keypoints as the inliers a verdict needs. A nearly flat picture (a storm sky, a blank slate)
    has a handful; failing to verify it says nothing, so it is neither verified nor rejected."""
    return len(query) >= min_inliers and len(stored) >= min_inliers


def verify(
    query: LocalFeatures,
    stored: LocalFeatures,
    query_mirrored: LocalFeatures | None = None,
    *,
    min_inliers: int = MIN_INLIERS,
    min_agreement: float = MIN_COVERAGE,
) -> Alignment | None:
    """The alignment of `query` on `stored` if their keypoints verify, else None; with
    `query_mirrored` (features of the query flipped left to right) a mirrored copy verifies too,
    and the better of the two alignments wins. A query carrying finer keypoints
    (`extract(..., finer=True)`, a search's own picture) is tried again with them if its standard
    keypoints fail: a small inset's original was stored at a scale only they reach."""
    alignment, _ = verify_near(
        query, stored, query_mirrored, min_inliers=min_inliers, min_agreement=min_agreement
    )
    return alignment


@dataclass(frozen=True)
class NearMiss:
    """How close a pair came: the most matches of the query's standard keypoints (or its mirror
    image's) that one plausible affine transform explains on the stored picture, with none of
    verification's other checks (two different pictures share a few chance matches; a copy that
    covers too few stored keypoints, most of them), and whether the content lies in place: most
    of those matches at the same place in both frames (`IN_PLACE`)."""

    inliers: int = 0
    mirrored: bool = False
    in_place: bool = False


def verify_near(
    query: LocalFeatures,
    stored: LocalFeatures,
    query_mirrored: LocalFeatures | None = None,
    *,
    min_inliers: int = MIN_INLIERS,
    min_agreement: float = MIN_COVERAGE,
    near_from: int | None = None,
) -> tuple[Alignment | None, NearMiss]:
    """`verify`, and how close the pair came (`NearMiss`) from the same matches. With
    `near_from`, a transform is fitted from that many matches on even where verification needs
    more, so that a pair can tell how close it came; without, only where it would verify."""
    fit_from = min_inliers if near_from is None else min(min_inliers, near_from)
    best, near = _better(query, stored, query_mirrored, min_inliers, min_agreement, fit_from)
    if best is None and query.finer is not None:
        finer_mirrored = None if query_mirrored is None else query_mirrored.finer
        best, _ = _better(query.finer, stored, finer_mirrored, min_inliers, min_agreement, min_inliers)
    return best, near


def _better(
    query: LocalFeatures,
    stored: LocalFeatures,
    query_mirrored: LocalFeatures | None,
    min_inliers: int,
    min_agreement: float,
    fit_from: int,
) -> tuple[Alignment | None, NearMiss]:
    best, near = _align(query, stored, False, min_inliers, min_agreement, fit_from)
    if query_mirrored is not None:
        flipped, flipped_near = _align(query_mirrored, stored, True, min_inliers, min_agreement, fit_from)
        if flipped is not None and (best is None or flipped.inliers > best.inliers):
            best = flipped
        if flipped_near.inliers > near.inliers:
            near = flipped_near
    return best, near


def _align(
    query: LocalFeatures,
    stored: LocalFeatures,
    mirrored: bool,
    min_inliers: int,
    min_agreement: float,
    fit_from: int,
) -> tuple[Alignment | None, NearMiss]:
    cv2 = _opencv()
    if len(query) < fit_from or len(stored) < fit_from:
        return None, NearMiss()
    source, target = _matches(query, stored)
    if len(source) < fit_from:
        return None, NearMiss()
    transform, inliers = _fit(source, target)
    if transform is None or not _plausible(transform):
        return None, NearMiss()
    count = int(inliers.sum())
    shift = np.abs(source[inliers] / np.array(query.size) - target[inliers] / np.array(stored.size))
    near = NearMiss(count, mirrored, bool(count) and float(np.median(shift.max(axis=1))) <= IN_PLACE)
    if count < min_inliers or min(len(query), len(stored), len(source)) < min_inliers:
        return None, near
    stored_size, query_size = stored.size, query.size
    stored_region, stored_coverage = _frame_on(transform, query_size, stored_size)
    inverse = cv2.invertAffineTransform(transform)
    query_region, query_coverage = _frame_on(inverse, stored_size, query_size)
    most_agree = count >= MOST_MATCHES * len(source)
    spread_query = _spread(source[inliers], query, transform, stored_size, query_coverage, most_agree)
    spread_stored = _spread(target[inliers], stored, inverse, query_size, stored_coverage, most_agree)
    if min(spread_query, spread_stored) < MIN_SPREAD:
        return None, near
    linear = transform[:, :2]
    scale = math.sqrt(abs(float(np.linalg.det(linear))))
    agreement = _agreement(stored, target[inliers], inverse, query_size)
    if agreement < agreement_needed(scale, min_agreement):
        return None, near
    places = _places(source[inliers], target[inliers])
    if len(places) < MIN_PLACES_SHARE * min_inliers:
        return None, near
    if _off_line(source[inliers][places], query_size, query_coverage) < MIN_OFF_LINE:
        return None, near
    if _off_line(target[inliers][places], stored_size, stored_coverage) < MIN_OFF_LINE:
        return None, near
    if mirrored:  # express the query's side in its own (unflipped) coordinates
        query_region = query_region.copy()
        query_region[:, 0] = 1.0 - query_region[:, 0]
    rotation = math.degrees(math.atan2(float(linear[1, 0]), float(linear[0, 0])))
    alignment = Alignment(
        count,
        len(source),
        transform.astype(np.float64),
        mirrored,
        scale,
        rotation,
        stored_region,
        query_region,
        stored_coverage,
        query_coverage,
        agreement,
        len(places),
        near.in_place,
    )
    return alignment, near


def _fit(
    source: npt.NDArray[np.float32], target: npt.NDArray[np.float32]
) -> tuple[npt.NDArray[np.float64] | None, npt.NDArray[np.bool_]]:
    """An affine transform from `source` to `target` points fitted with RANSAC, and which
    points it explains (its inliers)."""
    cv2 = _opencv()
    transform, inlier_mask = cv2.estimateAffine2D(
        source,
        target,
        method=cv2.RANSAC,
        ransacReprojThreshold=REPROJECTION_PIXELS,
        maxIters=2000,
        confidence=0.995,
        refineIters=10,
    )
    if transform is None:
        return None, np.zeros(len(source), dtype=bool)
    return transform, inlier_mask.ravel().astype(bool)


def agreement_needed(scale: float, min_agreement: float = MIN_COVERAGE) -> float:
    """The agreement a pair needs: less where the stored picture is small in the query (`scale`:
    stored pixels per query pixel). A copy shown smaller has lost its original's finest
    keypoints, a pyramid level for every 1.2x, so the need falls with the scale's logarithm from
    `min_agreement` at full size to the small copy's share at `SMALL_COPY_SCALE` and beyond, not
    in one step there."""
    shrunk = min(max(math.log(max(scale, 1e-6)) / math.log(SMALL_COPY_SCALE), 0.0), 1.0)
    return min_agreement * (1.0 - shrunk * (1.0 - SMALL_COPY_COVERAGE / MIN_COVERAGE))


def _places(source: npt.NDArray[np.float32], target: npt.NDArray[np.float32]) -> npt.NDArray[np.int64]:
    """Indices of the matches at distinct places: a match within `PLACE_PIXELS` of an earlier
    kept one in both images is the same corner seen again (another pyramid level), not more
    evidence. A match close in one image only (a small copy's neighbours) is its own place."""
    kept: list[int] = []
    for index in range(len(source)):
        if kept:
            near_source = np.hypot(*(source[kept] - source[index]).T) <= PLACE_PIXELS
            near_target = np.hypot(*(target[kept] - target[index]).T) <= PLACE_PIXELS
            if np.any(near_source & near_target):
                continue
        kept.append(index)
    return np.array(kept, dtype=np.int64)


def _off_line(points: npt.NDArray[np.float32], size: tuple[int, int], coverage: float) -> float:
    """How far the points stand off a line, leaving the farthest one out: over the lines through
    two of them, the least distance within which all points but one lie, relative to the side of
    the overlap. Near 0 for points on a line of text or a bar (a chance match off the line then
    fixes the transform), and for points bunched in one spot."""
    count = len(points)
    if count < 4:
        return 0.0
    first, second = np.triu_indices(count, 1)
    along = (points[second] - points[first]).astype(np.float64)
    length = np.hypot(along[:, 0], along[:, 1])
    usable = length > 1e-6
    if not usable.any():
        return 0.0
    normal = np.stack([-along[usable, 1], along[usable, 0]], axis=1) / length[usable, None]
    offsets = points[None, :, :] - points[first[usable]][:, None, :]
    distances = np.sort(np.abs(np.einsum("lpk,lk->lp", offsets, normal)), axis=1)
    side = math.sqrt(max(coverage, 1e-6) * size[0] * size[1])
    return float(distances[:, count - 2].min()) / side


def _agreement(
    stored: LocalFeatures,
    inlier_points: npt.NDArray[np.float32],
    to_query: npt.NDArray[np.float64],
    query_size: tuple[int, int],
) -> float:
    """Cut the part of the stored image the query covers into a GRID x GRID grid: of the cells
    holding stored keypoints, the share that hold an inlier."""
    points = stored.points
    covered = points[_lands_inside(points, to_query, query_size)]
    if not len(covered):
        return 0.0
    low, high = covered.min(axis=0), covered.max(axis=0)
    span = np.maximum(high - low, 1e-6)

    def cells(found: npt.NDArray[np.float32]) -> set[int]:
        place = np.clip(((found - low) / span * GRID).astype(int), 0, GRID - 1)
        return set((place[:, 1] * GRID + place[:, 0]).tolist())

    expected = cells(covered)
    return len(cells(inlier_points) & expected) / len(expected)


def _matches(
    query: LocalFeatures, stored: LocalFeatures
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Matched positions (query, stored): ratio test, and each stored keypoint at most once."""
    cv2 = _opencv()
    matcher = cv2.BFMatcher(cv2.NORM_HAMMING)
    pairs = matcher.knnMatch(query.descriptors, stored.descriptors, k=2)
    best: dict[int, tuple[float, int]] = {}
    for found in pairs:
        if not found:
            continue
        first = found[0]
        if len(found) > 1 and first.distance >= RATIO * found[1].distance:
            continue
        held = best.get(first.trainIdx)
        if held is None or first.distance < held[0]:
            best[first.trainIdx] = (first.distance, first.queryIdx)
    stored_index = np.array(list(best), dtype=np.int64)
    query_index = np.array([q for _, q in best.values()], dtype=np.int64)
    return query.points[query_index], stored.points[stored_index]


def fit_homography(query: LocalFeatures, stored: LocalFeatures) -> npt.NDArray[np.float64] | None:
    """The perspective transform (3 x 3, query working-size pixels to stored ones) that most of
    the two pictures' matched keypoints agree with (RANSAC), or None with too few matches: where
    an affine alignment is only close (a keystoned copy), this lays one picture on the other."""
    cv2 = _opencv()
    source, target = _matches(query, stored)
    if len(source) < MIN_INLIERS:
        return None
    homography, _ = cv2.findHomography(source, target, cv2.RANSAC, REPROJECTION_PIXELS)
    if homography is None or not np.isfinite(homography).all() or abs(np.linalg.det(homography)) < 1e-9:
        return None
    return np.asarray(homography, dtype=np.float64)


def _plausible(transform: npt.NDArray[np.float64]) -> bool:
    if not np.isfinite(transform).all():  # RANSAC on nearly collinear points
        return False
    singular = np.linalg.svd(transform[:, :2], compute_uv=False)
    if singular[1] <= 0 or np.linalg.det(transform[:, :2]) <= 0:  # a reflection is not a copy
        return False
    return bool(
        singular[1] >= MIN_SCALE and singular[0] <= MAX_SCALE and singular[0] / singular[1] <= MAX_ANISOTROPY
    )


def _frame_on(
    transform: npt.NDArray[np.float64], source_size: tuple[int, int], target_size: tuple[int, int]
) -> tuple[Quad, float]:
    """The source image's frame mapped into the target, clipped to it, relative; and the share of
    the target it covers."""
    cv2 = _opencv()
    width, height = source_size
    corners = np.array([[0, 0], [width, 0], [width, height], [0, height]], dtype=np.float64)
    mapped = corners @ transform[:, :2].T + transform[:, 2]
    target_width, target_height = target_size
    relative = mapped / np.array([target_width, target_height], dtype=np.float64)
    clipped = np.clip(relative, 0.0, 1.0)
    frame = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], dtype=np.float32)
    area, _ = cv2.intersectConvexConvex(relative.astype(np.float32), frame)
    return clipped, float(max(area, 0.0))


def _spread(
    inlier_points: npt.NDArray[np.float32],
    features: LocalFeatures,
    to_other: npt.NDArray[np.float64],
    other_size: tuple[int, int],
    coverage: float,
    most_agree: bool,
) -> float:
    """How widely the inliers spread on one side: their convex hull's area over the overlap's
    (`coverage`), or, when most matches agree with the transform, over the hull of that side's
    keypoints in the overlap (those `to_other` maps into the other frame). A nebula on black sky
    or a product on white has all its keypoints in a small patch, and inliers over that patch are
    the whole picture's evidence; where most matches disagree, inliers bunched in a patch are
    more likely a shared logo or the frame of a picture pasted at the same place."""
    extent = coverage
    if most_agree:
        inside = _lands_inside(features.points, to_other, other_size)
        extent = min(coverage, _hull_share(features.points[inside], features.size))
    return _hull_share(inlier_points, features.size) / max(extent, 1e-6)


def _lands_inside(
    points: npt.NDArray[np.float32], transform: npt.NDArray[np.float64], size: tuple[int, int]
) -> npt.NDArray[np.bool_]:
    """Which points `transform` maps inside a frame of `size` (the overlap, seen from one side)."""
    mapped = points @ transform[:, :2].T + transform[:, 2]
    inside: npt.NDArray[np.bool_] = np.all(
        (mapped >= 0) & (mapped < np.array(size, dtype=np.float64)), axis=1
    )
    return inside


def _hull_share(points: npt.NDArray[np.float32], size: tuple[int, int]) -> float:
    """Area of the points' convex hull as a share of the image."""
    cv2 = _opencv()
    if len(points) < 3:
        return 0.0
    hull = cv2.convexHull(points.astype(np.float32))
    return float(cv2.contourArea(hull)) / float(size[0] * size[1])
