"""Originals with copies derived from them by known edits: the ground truth for keeping originals.

`make_family(photo, folder, seed)` writes a photo's original (its file, untouched) and a random
choice of derived copies, each made by one known edit and saved as people save them: a small
copy, a 2x upscale saved as PNG (more pixels, lossless, but nothing new), a low-quality
re-compression, added noise (a larger file), a halftone (newsprint) filter, a mosaic, a blur, a
crop, a colour change, a rotation and a mirror. Copies are written after the original and given
later modification times, as a derived file is. Each copy's relation to the original is known,
so the same families test that `lookalike dupes` names every member's relation.
"""

from __future__ import annotations

import os
import random
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

Edit = Callable[[Image.Image, random.Random], Image.Image]


def _small(image: Image.Image, _: random.Random) -> Image.Image:
    return image.resize((max(1, image.width // 2), max(1, image.height // 2)), Image.Resampling.LANCZOS)


def _upscale(image: Image.Image, _: random.Random) -> Image.Image:
    return image.resize((image.width * 2, image.height * 2), Image.Resampling.BICUBIC)


def _noise(image: Image.Image, rng: random.Random) -> Image.Image:
    pixels = np.asarray(image, dtype=np.float64)
    noisy = pixels + np.random.default_rng(rng.randrange(1 << 30)).normal(0, 14, pixels.shape)
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))


def _halftone(image: Image.Image, _: random.Random) -> Image.Image:
    """Newsprint: each channel thresholded against a dot screen."""
    pixels = np.asarray(image, dtype=np.float64)
    height, width = pixels.shape[:2]
    y, x = np.mgrid[0:height, 0:width]
    screen = (np.sin(x * 1.6) * np.sin(y * 1.6) + 1) * 127.5
    return Image.fromarray(np.where(pixels > screen[..., None], 255, 0).astype(np.uint8))


def _mosaic(image: Image.Image, _: random.Random) -> Image.Image:
    block = 6
    small = image.resize((max(1, image.width // block), max(1, image.height // block)), Image.Resampling.BOX)
    return small.resize(image.size, Image.Resampling.NEAREST)


def _blur(image: Image.Image, _: random.Random) -> Image.Image:
    return image.filter(ImageFilter.GaussianBlur(2.5))


def _crop(image: Image.Image, rng: random.Random) -> Image.Image:
    share = rng.uniform(0.6, 0.8)
    width, height = round(image.width * share), round(image.height * share)
    left = rng.randrange(0, image.width - width + 1)
    top = rng.randrange(0, image.height - height + 1)
    return image.crop((left, top, left + width, top + height))


def _colour(image: Image.Image, _: random.Random) -> Image.Image:
    warmer = ImageEnhance.Color(image).enhance(1.8)
    return ImageEnhance.Brightness(warmer).enhance(1.15)


def _rotate(image: Image.Image, _: random.Random) -> Image.Image:
    return image.transpose(Image.Transpose.ROTATE_90)


def _mirror(image: Image.Image, _: random.Random) -> Image.Image:
    return image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)


def _same(image: Image.Image, _: random.Random) -> Image.Image:
    return image


@dataclass(frozen=True)
class Derivation:
    """One way of deriving a copy: the edit, how the copy is saved, and its expected relation."""

    name: str
    edit: Edit
    save_as: str  # "jpeg:Q", "png" or "webp-lossless"
    relation: str  # what `lookalike dupes` should call it, relative to the original


DERIVATIONS: tuple[Derivation, ...] = (
    Derivation("small", _small, "jpeg:85", "resized"),
    Derivation("upscaled", _upscale, "png", "resized"),
    Derivation("recompressed", _same, "jpeg:30", "re-encoded"),
    Derivation("noise", _noise, "jpeg:92", "edited"),
    Derivation("halftone", _halftone, "png", "edited"),
    Derivation("mosaic", _mosaic, "png", "edited"),
    Derivation("blur", _blur, "jpeg:92", "edited"),
    Derivation("crop", _crop, "jpeg:90", "cropped"),
    Derivation("colour", _colour, "jpeg:92", "edited"),
    Derivation("rotated", _rotate, "jpeg:92", "rotated"),
    Derivation("mirrored", _mirror, "jpeg:92", "flipped"),
)


@dataclass(frozen=True)
class Family:
    """An original and the copies derived from it: {path: derivation name}."""

    original: Path
    copies: dict[Path, str]


def make_family(photo: Path, folder: Path, seed: int, count: int | None = None) -> Family:
    """Write `photo` (unchanged) and `count` derived copies of it (default: a random 4-8) into
    `folder`; the copies' modification times are later than the original's."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    original = folder / f"original{photo.suffix.lower()}"
    shutil.copyfile(photo, original)
    start = 1_600_000_000 + seed * 1000
    os.utime(original, (start, start))
    with Image.open(photo) as opened:
        picture = opened.convert("RGB")
    chosen = rng.sample(DERIVATIONS, count if count is not None else rng.randint(4, 8))
    copies: dict[Path, str] = {}
    for number, derivation in enumerate(chosen, start=1):
        copy = derivation.edit(picture, rng)
        path = _save(copy, folder / f"copy-{number}-{derivation.name}", derivation.save_as)
        os.utime(path, (start + number * 60, start + number * 60))
        copies[path] = derivation.name
    return Family(original, copies)


def relation_of(name: str) -> str:
    """The relation a derivation's copy has to its original."""
    return next(d.relation for d in DERIVATIONS if d.name == name)


def _save(image: Image.Image, stem: Path, save_as: str) -> Path:
    if save_as.startswith("jpeg:"):
        path = stem.with_suffix(".jpg")
        image.save(path, "JPEG", quality=int(save_as.split(":")[1]))
    elif save_as == "webp-lossless":
        path = stem.with_suffix(".webp")
        image.save(path, "WEBP", lossless=True)
    else:
        path = stem.with_suffix(".png")
        image.save(path, "PNG")
    return path
