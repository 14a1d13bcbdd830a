"""The benchmark's images on disk: each photo scaled to a working size, and its transformed copies.

Layout of the cache folder (reused between runs; a copy is only made if its file is missing):

    originals/<photo>.png                the photo, at most `max_side` pixels on its long side
    copies/<transform>/<photo>.<ext>     the transformed copies (JPEG q95 by default)
    copies/<transform>/<photo>~<donors>.<ext>   composites: <donors> is a digest of the other
                                         photos' keys, so a copy is reused only with the same ones

A composite (picture in picture, collage) shows other photos of the corpus, its *donors*: chosen
per photo from a pool (by default every other photo; the accuracy benchmark gives each half the
other half, so a donor is never among the photos a composite is scored against), drawn with a
seed from the photo's key and the transform's name.

Photos come from a folder; if it holds a MANIFEST.tsv with a `subset` column (as
/work/shared/photos does) the subsets are kept, and the tuning/test split is stratified by them.
"""

from __future__ import annotations

import csv
import hashlib
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
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
    donors: tuple[int, ...] = ()  # the other photos a composite shows (indices into the photo list)


DonorPool = Callable[[int], Iterable[int]]  # photo index -> the photos its composites may show


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

    def copy(self, photo: Photo, transform: str, donors: Sequence[Photo] = ()) -> Path:
        extension = COPY_FORMATS[self.copy_format][1]
        name = photo.key
        if donors:
            name += "~" + hashlib.sha256("\n".join(d.key for d in donors).encode()).hexdigest()[:12]
        return self.folder / "copies" / transform / f"{name}{extension}"


def choose_donors(pool: Iterable[int], photo: int, count: int, seed: int) -> tuple[int, ...]:
    """`count` different photos drawn from `pool` with `seed`, never `photo` itself; fewer when
    the pool holds fewer."""
    candidates = sorted(set(pool) - {photo})
    if len(candidates) <= count:
        return tuple(candidates)
    picked = np.random.default_rng(seed).choice(len(candidates), count, replace=False)
    return tuple(candidates[int(i)] for i in picked)


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


def _stored_original(layout: CorpusLayout, photo: Photo) -> Image.Image:
    with Image.open(layout.original(photo)) as stored:
        original: Image.Image = stored.convert("RGB")
    return original


def make_copies(
    photo: Photo,
    layout: CorpusLayout,
    transform_names: Sequence[str],
    donors: Mapping[str, Sequence[Photo]] | None = None,
) -> int:
    """Write the photo's original and every missing copy; returns how many files were written.
    A composite transform takes its `donors[name]` (whose originals must be written already)."""
    donors = donors or {}
    original_path = layout.original(photo)
    missing = [
        name for name in transform_names if not layout.copy(photo, name, donors.get(name, ())).exists()
    ]
    if original_path.exists() and not missing:
        return 0
    written = 0
    if original_path.exists():
        original = _stored_original(layout, photo)
    else:
        original = load_original(photo.path, layout.max_side)
        _save(original, original_path, "png")
        written += 1
    for name in missing:
        transform: Transform = get_transform(name)
        shown = donors.get(name, ())
        copy = transform(original, stable_seed(photo.key, name), [_stored_original(layout, d) for d in shown])
        _save(copy, layout.copy(photo, name, shown), layout.copy_format)
        written += 1
    return written


CopiesJob = tuple[Photo, CorpusLayout, tuple[str, ...], dict[str, tuple[Photo, ...]]]


def _make_copies_job(args: CopiesJob) -> int | str:
    """Files written, or the reason the photo cannot be used (a photo that does not decode)."""
    try:
        return make_copies(*args)
    except LookalikeError as error:
        return str(error)


def _run(jobs: Sequence[CopiesJob], workers: int) -> list[int | str]:
    if workers > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(workers) as pool:
            return list(pool.map(_make_copies_job, jobs, chunksize=4))
    return [_make_copies_job(job) for job in jobs]


def build_corpus(
    photos: Sequence[Photo],
    layout: CorpusLayout,
    transforms: Iterable[Transform],
    workers: int = 1,
    on_skip: Callable[[str], None] = print,
    donor_pool: DonorPool | None = None,
) -> list[BenchImage]:
    """Make (or find in the cache) the originals and copies; returns every benchmark image,
    grouped by photo: the original first, then its copies in registry order. A photo that does
    not decode is skipped and reported through `on_skip`. Composites are made once every
    original is, from donors drawn in `donor_pool(photo index)` (default: every other photo)
    among the photos that decoded; one that finds too few donors is left out and reported."""
    chosen = tuple(transforms)
    simple = tuple(t.name for t in chosen if not t.donors)
    outcomes = _run([(photo, layout, simple, {}) for photo in photos], workers)
    usable = [i for i, outcome in enumerate(outcomes) if not isinstance(outcome, str)]
    for outcome in outcomes:
        if isinstance(outcome, str):
            on_skip(f"skipped photo {outcome}")
    donors_of: dict[tuple[int, str], tuple[int, ...]] = {}
    for index in usable:
        pool = set(usable).intersection(donor_pool(index) if donor_pool else usable)
        for t in (t for t in chosen if t.donors):
            drawn = choose_donors(pool, index, t.donors, stable_seed(photos[index].key, t.name))
            if len(drawn) == t.donors:
                donors_of[(index, t.name)] = drawn
            else:
                on_skip(f"{t.name} of {photos[index].key} left out: it needs {t.donors} other photos")
    composite_jobs = []
    for index in usable:
        shown = {
            name: tuple(photos[d] for d in drawn) for (i, name), drawn in donors_of.items() if i == index
        }
        if shown:
            composite_jobs.append((photos[index], layout, tuple(shown), shown))
    for outcome in _run(composite_jobs, workers):
        if isinstance(outcome, str):
            raise LookalikeError(f"a composite copy could not be made: {outcome}")
    images: list[BenchImage] = []
    for index in usable:
        photo = photos[index]
        images.append(BenchImage(layout.original(photo), index, None))
        for t in chosen:
            drawn = donors_of.get((index, t.name), ())
            if t.donors and not drawn:
                continue
            path = layout.copy(photo, t.name, [photos[d] for d in drawn])
            images.append(BenchImage(path, index, t.name, drawn))
    return images
