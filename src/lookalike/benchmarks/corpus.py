"""The benchmark's images on disk: each photo scaled to a working size, and its transformed copies.

Layout of the cache folder (reused between runs; a copy is only made if its file is missing):

    originals/<photo>.png                the photo, at most `max_side` pixels on its long side
    copies/<transform>/<photo>.<ext>     the transformed copies (JPEG q95 by default)

Photos come from a folder; if it holds a MANIFEST.tsv with a `subset` column (as
/work/shared/photos does) the subsets are kept, and the tuning/test split is stratified by them.
"""

from __future__ import annotations

import csv
import hashlib
import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from lookalike.benchmarks.transforms import Transform, as_rgb, get_transform, stable_seed
from lookalike.decode import decode
from lookalike.discover import iter_image_paths
from lookalike.errors import LookalikeError

CACHE_VERSION = "v1"
COPY_FORMATS = {"jpeg": ("JPEG", ".jpg", {"quality": 95}), "png": ("PNG", ".png", {"compress_level": 1})}


@dataclass(frozen=True)
class Photo:
    """One source photo: its path, a key naming it in the cache, and its subset ("general", "astro")."""

    path: Path
    key: str
    subset: str = "general"


@dataclass(frozen=True)
class BenchImage:
    """One benchmark image: an original (transform None) or a copy of `photo` made by `transform`."""

    path: Path
    photo: int  # index into the photo list
    transform: str | None


def find_photos(folder: Path) -> list[Photo]:
    """Every image under `folder`, with subsets from MANIFEST.tsv when there is one."""
    subsets: dict[str, str] = {}
    manifest = folder / "MANIFEST.tsv"
    if manifest.is_file():
        with open(manifest, newline="") as handle:
            for row in csv.DictReader(handle, delimiter="\t"):
                subsets[row["path"]] = row.get("subset") or "general"
    photos = []
    for path in sorted(iter_image_paths([folder], recursive=True), key=str):
        relative = Path(path).relative_to(folder).as_posix()
        key = os.path.splitext(relative)[0]
        photos.append(Photo(Path(path), key, subsets.get(relative, "general")))
    return photos


def split_photos(photos: Sequence[Photo]) -> tuple[list[int], list[int]]:
    """Two halves by photo, stratified by subset: within a subset, photos ordered by a hash of their
    key alternate between tuning and test. Deterministic, and independent of the file order."""
    tune: list[int] = []
    test: list[int] = []
    by_subset: dict[str, list[int]] = {}
    for index, photo in enumerate(photos):
        by_subset.setdefault(photo.subset, []).append(index)
    for subset in sorted(by_subset):
        ordered = sorted(by_subset[subset], key=lambda i: hashlib.sha256(photos[i].key.encode()).hexdigest())
        for rank, index in enumerate(ordered):
            (tune if rank % 2 == 0 else test).append(index)
    return sorted(tune), sorted(test)


@dataclass(frozen=True)
class CorpusLayout:
    """Where the cache keeps originals and copies for one set of settings."""

    root: Path
    max_side: int = 512
    copy_format: str = "jpeg"

    @property
    def folder(self) -> Path:
        return self.root / f"{CACHE_VERSION}-side{self.max_side}-{self.copy_format}"

    def original(self, photo: Photo) -> Path:
        return self.folder / "originals" / f"{photo.key}.png"

    def copy(self, photo: Photo, transform: str) -> Path:
        extension = COPY_FORMATS[self.copy_format][1]
        return self.folder / "copies" / transform / f"{photo.key}{extension}"


def load_original(path: Path, max_side: int) -> Image.Image:
    """A photo decoded as the pipeline decodes it (EXIF orientation applied), in RGB, scaled down so
    its long side is at most `max_side`."""
    image = as_rgb(decode(path).image)
    if max(image.size) > max_side:
        image = image.copy()
        image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return image


def _save(image: Image.Image, path: Path, copy_format: str) -> None:
    file_format, _, params = COPY_FORMATS[copy_format]
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".part")
    image.save(temporary, file_format, **params)
    os.replace(temporary, path)  # a run stopped half-way never leaves a half-written copy


def make_copies(photo: Photo, layout: CorpusLayout, transform_names: Sequence[str]) -> int:
    """Write the photo's original and every missing copy; returns how many files were written."""
    original_path = layout.original(photo)
    missing = [name for name in transform_names if not layout.copy(photo, name).exists()]
    if original_path.exists() and not missing:
        return 0
    written = 0
    if original_path.exists():
        with Image.open(original_path) as stored:
            original = stored.convert("RGB")
    else:
        original = load_original(photo.path, layout.max_side)
        _save(original, original_path, "png")
        written += 1
    for name in missing:
        transform: Transform = get_transform(name)
        copy = transform(original, stable_seed(photo.key, name))
        _save(copy, layout.copy(photo, name), layout.copy_format)
        written += 1
    return written


def _make_copies_job(args: tuple[Photo, CorpusLayout, tuple[str, ...]]) -> int | str:
    """Files written, or the reason the photo cannot be used (a photo that does not decode)."""
    try:
        return make_copies(*args)
    except LookalikeError as error:
        return str(error)


def build_corpus(
    photos: Sequence[Photo],
    layout: CorpusLayout,
    transforms: Iterable[Transform],
    workers: int = 1,
    on_skip: Callable[[str], None] = print,
) -> list[BenchImage]:
    """Make (or find in the cache) the originals and copies; returns every benchmark image,
    grouped by photo: the original first, then its copies in registry order. A photo that does
    not decode is skipped and reported through `on_skip`."""
    names = tuple(t.name for t in transforms)
    jobs = [(photo, layout, names) for photo in photos]
    outcomes: list[int | str] = []
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            outcomes = list(pool.map(_make_copies_job, jobs, chunksize=4))
    else:
        outcomes = [_make_copies_job(job) for job in jobs]
    images: list[BenchImage] = []
    for index, (photo, outcome) in enumerate(zip(photos, outcomes, strict=True)):
        if isinstance(outcome, str):
            on_skip(f"skipped photo {outcome}")
            continue
        images.append(BenchImage(layout.original(photo), index, None))
        images.extend(BenchImage(layout.copy(photo, name), index, name) for name in names)
    return images
