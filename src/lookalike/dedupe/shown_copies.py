"""Which pairs of a duplicate group its files show to be copies, and the groups they make.

The matcher groups what its hashes (and keypoints) accept, and one false pair joins two groups:
two screenshots of different photos in one app hash alike (the app's bars and text fill most of
both frames), and a group of one photo's copies and a group of another's become one. Here every
pair the search found is checked on the two files before the group is described. It holds when

- a picture inside one frame (`lookalike.regions`: a collage's cell, the photo in a screenshot)
  is the other's whole picture (32x32 thumbnails correlate >= 0.9 under one of its 8 turns);
- keypoints verify one picture in the other, either way, mirrored or not (a crop, a turn, a
  picture in a picture); where the alignment only shifts one frame on the other, unturned at one
  scale, the pictures inside the two frames must also agree where one lies on the other, laid by
  the homography their keypoints agree with (two screenshots of different photos in one app
  verify on the app's bars and text, and the alignment lays one photo on the other; a keystoned
  copy lies on its original);
- or keypoints cannot judge (a nearly flat picture has too few).

Otherwise the pair is similar, not a copy. Groups are the connected parts of the pairs that
hold; a member left with none is left out of every group and listed as similar under the group
of its nearest pair.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np
import numpy.typing as npt
from PIL import Image

from lookalike.dedupe.best_copy import best_copy_rank
from lookalike.dedupe.fidelity import ImageFacts
from lookalike.dedupe.grouping import Group
from lookalike.index.base import Entry
from lookalike.local.features import LocalFeatures, _opencv, extract, local_features_available, mirrored
from lookalike.local.verify import Alignment, can_judge, fit_homography, verify
from lookalike.regions import RelativeBox, propose_regions, relative_boxes

INSIDE_CORRELATION = 0.9  # a picture inside a frame and the other's whole picture, 32x32 thumbnails
SAME_PLACE_CORRELATION = 0.8  # the pictures at one place in two frames that lie on each other
SAME_BOX = 0.7  # boxes in two frames are one place when they share this much of the smaller
SAME_SCALE = 0.25  # ... and the smaller is at least this share of the larger
SHIFT_TURN = 3.0  # degrees: an alignment turning less only shifts one frame on the other ...
SHIFT_SCALE = 0.05  # ... when it also scales by less than this
INSIDE_ASPECT = 0.1  # log aspect ratios this close may be one picture (a region's box is not exact)
THUMBNAIL_SIDE = 32
NOT_A_COPY = "similar, not a copy: the files show no picture in common"


@dataclass
class Looks:
    """What one member's file gives the checks, computed on first use and kept for its group."""

    facts: ImageFacts

    @cached_property
    def gray(self) -> npt.NDArray[np.uint8]:
        return np.asarray(Image.fromarray(np.ascontiguousarray(self.facts.pixels)).convert("L"))

    @cached_property
    def thumbnails(self) -> list[tuple[float, npt.NDArray[np.float64]]]:
        """(log aspect ratio, centred unit-norm 32x32 thumbnail) of each of the 8 turns."""
        return _turned_thumbnails(self.gray)

    @cached_property
    def regions(self) -> tuple[RelativeBox, ...]:
        """The pictures inside the frame (a collage's cells, a screenshot's photo), as shares of it."""
        height, width = self.gray.shape
        return relative_boxes(propose_regions(self.facts.pixels), (width, height))

    def picture_at(self, box: RelativeBox) -> list[tuple[float, npt.NDArray[np.float64]]]:
        """(log aspect ratio, thumbnail) of the frame's part in `box` under each of the 8 turns,
        upright first; none if the part is too small to compare."""
        height, width = self.gray.shape
        left, top, right, bottom = box
        part = self.gray[
            round(top * height) : round(bottom * height), round(left * width) : round(right * width)
        ]
        if min(part.shape) < THUMBNAIL_SIDE // 2:
            return []
        return _turned_thumbnails(part)

    @cached_property
    def keypoints(self) -> LocalFeatures:
        """The picture's keypoints with the finer set (found as a search's own picture is)."""
        return extract(self.gray, finer=True)

    @cached_property
    def mirrored_keypoints(self) -> LocalFeatures:
        return extract(mirrored(self.gray))


def _turned_thumbnails(gray: npt.NDArray[np.uint8]) -> list[tuple[float, npt.NDArray[np.float64]]]:
    turned = []
    for mirror in (False, True):
        base = gray[:, ::-1] if mirror else gray
        for turns in range(4):
            picture = np.rot90(base, turns)
            turned.append((float(np.log(picture.shape[1] / picture.shape[0])), _thumbnail(picture)))
    return turned


def _thumbnail(gray: npt.NDArray[np.uint8]) -> npt.NDArray[np.float64]:
    small = np.asarray(
        Image.fromarray(np.ascontiguousarray(gray)).resize(
            (THUMBNAIL_SIDE, THUMBNAIL_SIDE), Image.Resampling.BOX
        ),
        dtype=np.float64,
    )
    small -= small.mean()
    norm = float(np.sqrt((small * small).sum()))
    return small / norm if norm > 0 else small


def _alike(first: npt.NDArray[np.float64], second: npt.NDArray[np.float64]) -> float:
    return float((first * second).sum())


def inside(outer: Looks, picture: Looks) -> bool:
    """Whether a picture inside `outer` is `picture`'s whole picture, under one of its turns."""
    return shown_inside(outer, picture) is not None


def shown_inside(outer: Looks, picture: Looks) -> RelativeBox | None:
    """The box (shares of `outer`'s frame) of the picture inside `outer` that is `picture`'s
    whole picture under one of its turns (a screenshot's photo, a collage's cell), if any."""
    for box in outer.regions:
        part = outer.picture_at(box)
        if part and any(
            abs(aspect - part[0][0]) <= INSIDE_ASPECT and _alike(part[0][1], thumbnail) >= INSIDE_CORRELATION
            for aspect, thumbnail in picture.thumbnails
        ):
            return box
    return None


def composites(looks: Mapping[str, Looks]) -> set[str]:
    """The members with a picture inside that is another member's whole picture (a screenshot,
    a collage, a picture in a picture of it): derived work, never the original."""
    keys = list(looks)
    if len(keys) < 2:
        return set()
    wholes = np.stack([thumbnail for key in keys for _, thumbnail in looks[key].thumbnails]).reshape(
        len(keys) * 8, -1
    )
    aspects = np.array([aspect for key in keys for aspect, _ in looks[key].thumbnails])
    owner = np.repeat(np.arange(len(keys)), 8)
    found = set()
    for number, key in enumerate(keys):
        parts = [turns[0] for box in looks[key].regions if (turns := looks[key].picture_at(box))]
        if not parts:
            continue
        alike = np.stack([part[1].ravel() for part in parts]) @ wholes.T  # (parts, members x 8)
        fits = np.abs(np.array([part[0] for part in parts])[:, None] - aspects[None, :]) <= INSIDE_ASPECT
        hit = (alike >= INSIDE_CORRELATION) & fits & (owner != number)[None, :]
        if hit.any():
            found.add(key)
    return found


def pictures_agree(query: Looks, stored: Looks, alignment: Alignment) -> bool:
    """Whether the pictures inside the two frames agree where the query lies on the stored
    picture. A box found in the query, carried over, and a box found in the stored frame that
    mostly covers it or lies mostly inside it, at a like scale, are one place: the two frames must
    show the same picture on the part they share. Two screenshots of different photos in one app
    verify on the app's bars and text, and the alignment lays one photo on the other. The query is
    laid on the stored frame by the perspective transform its keypoints agree with (`alignment`'s
    affine where none fits), so a keystoned copy's pictures lie on the original's. A box found in
    one frame only is not compared: a caption or a logo added to a copy is no picture the other
    lacks."""
    cv2 = _opencv()
    gray = query.gray[:, ::-1] if alignment.mirrored else query.gray
    onto = _query_onto_stored(query, stored, alignment)
    height, width = stored.gray.shape
    laid = cv2.warpPerspective(np.ascontiguousarray(gray), onto, (width, height), flags=cv2.INTER_AREA)
    for box in query.regions:
        carried = _carried(
            _mirrored(box, alignment.mirrored), onto, (gray.shape[1], gray.shape[0]), (width, height)
        )
        for theirs in stored.regions:
            common = _common(carried, theirs)
            if common is None:
                continue
            left, top, right, bottom = (
                round(common[0] * width),
                round(common[1] * height),
                round(common[2] * width),
                round(common[3] * height),
            )
            if min(right - left, bottom - top) < THUMBNAIL_SIDE // 2:
                continue
            mine, other = laid[top:bottom, left:right], stored.gray[top:bottom, left:right]
            if _alike(_thumbnail(mine), _thumbnail(other)) < SAME_PLACE_CORRELATION:
                return False
    return True


def _query_onto_stored(query: Looks, stored: Looks, alignment: Alignment) -> npt.NDArray[np.float64]:
    """The 3 x 3 transform from the query's pixels (mirrored first if the alignment is) to the
    stored picture's: the homography their keypoints agree with, else the alignment's affine."""
    side = query.mirrored_keypoints if alignment.mirrored else query.keypoints
    working = fit_homography(side, stored.keypoints)
    if working is None:
        working = np.vstack([np.asarray(alignment.transform, dtype=np.float64), [0.0, 0.0, 1.0]])
    query_height, query_width = query.gray.shape
    stored_height, stored_width = stored.gray.shape
    to_working = np.diag([side.size[0] / query_width, side.size[1] / query_height, 1.0])
    from_working = np.diag(
        [stored_width / stored.keypoints.size[0], stored_height / stored.keypoints.size[1], 1.0]
    )
    onto: npt.NDArray[np.float64] = from_working @ working @ to_working
    return onto


def _area(box: RelativeBox) -> float:
    return max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1])


def _common(first: RelativeBox, second: RelativeBox) -> RelativeBox | None:
    """The part two boxes share, if they are one place: it holds most of the smaller box, and
    the smaller is at least a quarter of the larger."""
    common = (
        max(first[0], second[0]),
        max(first[1], second[1]),
        min(first[2], second[2]),
        min(first[3], second[3]),
    )
    smaller, larger = sorted((_area(first), _area(second)))
    if smaller <= 0 or smaller < SAME_SCALE * larger or _area(common) < SAME_BOX * smaller:
        return None
    return common


def _mirrored(box: RelativeBox, mirrored: bool) -> RelativeBox:
    left, top, right, bottom = box
    return (1.0 - right, top, 1.0 - left, bottom) if mirrored else box


def _carried(
    box: RelativeBox, transform: npt.NDArray[np.float64], size: tuple[int, int], to_size: tuple[int, int]
) -> RelativeBox:
    """The bounding box, relative to a frame of `to_size` pixels, of `box` (relative to a frame
    of `size` pixels) carried over by a 3 x 3 transform between the two frames' pixels."""
    left, top, right, bottom = box
    width, height = size
    xs = np.array([left, right, left, right]) * width
    ys = np.array([top, top, bottom, bottom]) * height
    placed = np.stack([xs, ys, np.ones(4)], axis=1) @ transform.T
    xs = placed[:, 0] / placed[:, 2] / to_size[0]
    ys = placed[:, 1] / placed[:, 2] / to_size[1]
    return float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max())


def shown_copy(first: Looks, second: Looks) -> bool:
    """Whether the pair holds (see the module docstring): the files show a copy, or cannot tell."""
    if inside(first, second) or inside(second, first):
        return True
    if not local_features_available():
        return True  # without OpenCV the hashes' word stands
    for query, stored in ((first, second), (second, first)):
        if not can_judge(query.keypoints, stored.keypoints):
            return True
    for query, stored in ((first, second), (second, first)):
        alignment = verify(query.keypoints, stored.keypoints, query.mirrored_keypoints)
        if alignment is not None and (
            not _shifted_frame(alignment) or pictures_agree(query, stored, alignment)
        ):
            return True
    return False


def _shifted_frame(alignment: Alignment) -> bool:
    """Whether the alignment only shifts one frame on the other, unturned at one scale: how
    two screenshots of one app lie on each other (their bars in place, the lower ones pushed
    down by a taller photo). A copy that was turned, mirrored or scaled is not checked."""
    turn = abs((alignment.rotation + 180.0) % 360.0 - 180.0)
    return not alignment.mirrored and turn <= SHIFT_TURN and abs(alignment.scale - 1.0) <= SHIFT_SCALE


@dataclass(frozen=True)
class Split:
    """A group checked on its files: the groups its held pairs make, and the members left in
    none (similar to a member, not shown to be a copy of any)."""

    groups: tuple[Group, ...]
    left_out: tuple[Entry, ...]


def looks_of(facts: Mapping[str, ImageFacts | None]) -> dict[str, Looks]:
    """A `Looks` for each member with facts, to share between the checks of its group."""
    return {key: Looks(value) for key, value in facts.items() if value is not None}


def split_group(
    group: Group, facts: Mapping[str, ImageFacts | None], looks: Mapping[str, Looks] | None = None
) -> Split:
    """`group` cut where its pairs do not hold. Pairs are checked most alike first (by the
    search's distance), and a pair whose members are already joined by held pairs is not checked:
    it could not change the groups. Files with the same bytes, and a member without facts (no file
    to read), keep their pairs. `looks` (from `looks_of(facts)`) shares their work with later checks."""
    members = {entry.key: entry for entry in group.members}
    looks = looks_of(facts) if looks is None else looks
    parent = {key: key for key in members}

    def root(key: str) -> str:
        while parent[key] != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    held: dict[tuple[str, str], int] = {}
    for (first, second), distance in sorted(group.distances.items(), key=lambda item: (item[1], item[0])):
        if first not in members or second not in members:
            continue
        a, b = root(first), root(second)
        if a != b:
            same_bytes = members[first].sha256 is not None and members[first].sha256 == members[second].sha256
            if (
                not same_bytes
                and first in looks
                and second in looks
                and not shown_copy(looks[first], looks[second])
            ):
                continue
            parent[a] = b
        held[(first, second)] = distance
    joined = {key for pair in held for key in pair}
    parts: dict[str, list[Entry]] = {}
    for key, entry in members.items():
        if key in joined:
            parts.setdefault(root(key), []).append(entry)
    # A member left out is listed as similar under the part holding its nearest pair.
    similar: dict[str, list[Entry]] = {}
    for (first, second), _ in sorted(group.distances.items(), key=lambda item: (item[1], item[0])):
        for outside, inside in ((first, second), (second, first)):
            if outside in members and outside not in joined and inside in joined:
                placed = similar.setdefault(root(inside), [])
                if all(entry.key != outside for part in similar.values() for entry in part):
                    placed.append(members[outside])
    groups = []
    for name, part in parts.items():
        keys = {entry.key for entry in part}
        distances = {pair: d for pair, d in held.items() if pair[0] in keys}
        ordered = tuple(sorted(part, key=best_copy_rank))
        groups.append(
            replace(group, members=ordered, distances=distances, similar=tuple(similar.get(name, ())))
        )
    left_out = tuple(entry for key, entry in members.items() if key not in joined)
    return Split(tuple(groups), left_out)
