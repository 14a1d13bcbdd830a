"""The showcase behind `make demo`: a small gallery with planted copies, indexed and de-duplicated.

Offline and deterministic: originals come from a folder of photos (the repository's committed
sample photos by default), copies are made with the accuracy benchmark's edits (resized and
re-compressed, cropped, recoloured, flipped, watermarked, letterboxed), and the planted groups are
known, so the demo can say what it found, what it missed and what it grouped wrongly.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from lookalike.benchmarks.transforms import get_transform, stable_seed
from lookalike.dedupe.grouping import Group

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}

# (file name suffix, edits applied in order, what a person would call it)
COPIES: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("small", ("resize_50", "jpeg_50"), "resized and re-compressed"),
    ("cropped", ("crop_centre_10",), "cropped"),
    ("sepia", ("sepia",), "recoloured"),
    ("mirrored", ("flip_horizontal",), "flipped"),
    ("watermarked", ("watermark",), "watermarked"),
    ("letterboxed", ("pad_black_10",), "letterboxed"),
)


@dataclass(frozen=True)
class GalleryImage:
    path: Path
    original: str  # the original's file stem: images with the same one form a planted group
    edit: str | None  # None for the original itself


def sample_photos(folder: Path | None = None) -> list[Path]:
    """The demo's originals: `folder`, else the repository's committed sample photos."""
    if folder is None:
        folder = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "photos"
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no photo folder (give one with --photos)")
    photos = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if len(photos) < 4:
        raise FileNotFoundError(f"{folder}: the demo needs at least 4 photos")
    return photos


def build_gallery(
    photos: Sequence[Path], target: Path, originals: int = 14, planted: int = 6
) -> list[GalleryImage]:
    """Copy `originals` photos into `target/originals` and give the first `planted` of them two
    edited copies each in `target/copies`; rebuilt from scratch each time (deterministic)."""
    if target.exists():
        shutil.rmtree(target)
    (target / "originals").mkdir(parents=True)
    (target / "copies").mkdir()
    gallery: list[GalleryImage] = []
    for number, photo in enumerate(photos[:originals]):
        with Image.open(photo) as opened:
            image = opened.convert("RGB")
        original = target / "originals" / f"{photo.stem}.jpg"
        image.save(original, quality=92)
        gallery.append(GalleryImage(original, photo.stem, None))
        if number >= planted:
            continue
        for suffix, edits, _ in (COPIES[(2 * number) % len(COPIES)], COPIES[(2 * number + 1) % len(COPIES)]):
            edited = image
            for name in edits:
                edited = get_transform(name)(edited, stable_seed(photo.stem, name))
            copy = target / "copies" / f"{photo.stem}-{suffix}.jpg"
            edited.save(copy, quality=88)
            gallery.append(GalleryImage(copy, photo.stem, suffix))
    return gallery


@dataclass(frozen=True)
class Score:
    """How the groups found compare with the planted ones."""

    planted: int
    found: int  # planted groups found whole, and nothing else in them
    partial: int  # planted groups found with some members missing
    missed: int  # planted groups not found at all
    false_groups: int  # groups mixing different originals


def score_groups(groups: Sequence[Group], gallery: Sequence[GalleryImage]) -> Score:
    origin = {str(image.path.resolve()): image.original for image in gallery}
    expected: dict[str, set[str]] = {}
    for image in gallery:
        expected.setdefault(image.original, set()).add(str(image.path.resolve()))
    planted = {name: members for name, members in expected.items() if len(members) > 1}
    found = partial = false_groups = 0
    seen: set[str] = set()
    for group in groups:
        members = {entry.key for entry in group.members}
        origins = {origin.get(key) for key in members}
        if len(origins) != 1 or None in origins:
            false_groups += 1
            continue
        name = origins.pop()
        assert name is not None
        seen.add(name)
        if members == planted.get(name):
            found += 1
        else:
            partial += 1
    missed = len([name for name in planted if name not in seen])
    return Score(len(planted), found, partial, missed, false_groups)
