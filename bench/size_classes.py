"""Benchmark inputs: JPEGs of ~0.3, ~3 and ~12 megapixels (quality 90) made from real photos.

The photos come from a folder such as ../shared/photos. Each class keeps the aspect ratio of its
source; a class with too few large enough sources upscales the largest remaining ones (the 12 MP
class usually needs this). The files are generated once into a cache folder and reused.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp", ".gif"}
JPEG_QUALITY = 90


@dataclass(frozen=True)
class SizeClass:
    """Target size in megapixels and how many images to make."""

    label: str
    megapixels: float
    count: int


DEFAULT_CLASSES = (
    SizeClass("0.3 MP", 0.3, 40),
    SizeClass("3 MP", 3.0, 16),
    SizeClass("12 MP", 12.0, 8),
)


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "lookalike-bench"


def photo_sizes(photos: Path) -> list[tuple[Path, int, int]]:
    """(path, width, height) of every readable photo under `photos`, sorted by path."""
    found = []
    for path in sorted(photos.rglob("*")):
        if path.suffix.lower() not in PHOTO_SUFFIXES:
            continue
        try:
            with Image.open(path) as image:
                found.append((path, image.width, image.height))
        except Exception:
            continue
    return found


def pick_sources(sizes: list[tuple[Path, int, int]], size_class: SizeClass) -> list[Path]:
    """Sources at least as large as the class, evenly spread; topped up with the largest others."""
    target = size_class.megapixels * 1e6
    large = [path for path, w, h in sizes if w * h >= target]
    if len(large) >= size_class.count:
        step = len(large) / size_class.count
        return [large[int(i * step)] for i in range(size_class.count)]
    rest = sorted((w * h, path) for path, w, h in sizes if w * h < target)
    top_up = [path for _, path in reversed(rest)][: size_class.count - len(large)]
    return large + top_up


def make_class(photos: Path, cache_dir: Path, size_class: SizeClass) -> list[Path]:
    """The class's JPEGs, generated on first use; cached by the list of sources and the target."""
    sizes = photo_sizes(photos)
    sources = pick_sources(sizes, size_class)
    recipe = json.dumps([size_class.megapixels, JPEG_QUALITY, [str(p) for p in sources]])
    folder = cache_dir / f"{size_class.megapixels:g}mp-{hashlib.sha256(recipe.encode()).hexdigest()[:12]}"
    targets = [folder / f"{index:03d}.jpg" for index in range(len(sources))]
    if all(t.exists() for t in targets):
        return targets
    folder.mkdir(parents=True, exist_ok=True)
    for source, target in zip(sources, targets, strict=True):
        with Image.open(source) as image:
            rgb = image.convert("RGB")
        scale = math.sqrt(size_class.megapixels * 1e6 / (rgb.width * rgb.height))
        size = (max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale)))
        resized = rgb.resize(size, Image.Resampling.LANCZOS)
        partial = target.with_suffix(".part")
        resized.save(partial, "JPEG", quality=JPEG_QUALITY)
        partial.replace(target)
    return targets
