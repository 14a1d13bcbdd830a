"""Golden tests: every algorithm is bit-exact with ImageHash 4.3.2 in exact mode.

ImageHash is the oracle. Real photographs (committed fixtures plus scikit-image's images), at
several hash sizes, then the awkward cases: every Pillow mode a file can decode to, and tiny or
extreme shapes. EXIF orientation is off because ImageHash ignores it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import imagehash
import numpy as np
import pytest
from PIL import Image

import lookalike
from conftest import all_photos

PHOTOS = all_photos()

HASH_SIZES = (2, 3, 5, 8, 12, 16)
WAVELET_SIZES = (2, 4, 8, 16)
BINBITS = (2, 3, 4, 5)


def oracle_table() -> dict[str, Callable[[Image.Image], Any]]:
    """Our spec name -> the ImageHash call that must give the same hex."""
    table: dict[str, Callable[[Image.Image], Any]] = {}
    for n in HASH_SIZES:
        table[f"ahash:{n}"] = lambda im, n=n: imagehash.average_hash(im, n)
        table[f"dhash:{n}"] = lambda im, n=n: imagehash.dhash(im, n)
        table[f"dhash_vertical:{n}"] = lambda im, n=n: imagehash.dhash_vertical(im, n)
        table[f"phash:{n}"] = lambda im, n=n: imagehash.phash(im, n)
        table[f"phash_simple:{n}"] = lambda im, n=n: imagehash.phash_simple(im, n)
    for n in WAVELET_SIZES:
        table[f"whash:{n}"] = lambda im, n=n: imagehash.whash(im, n)
        table[f"whash_db4:{n}"] = lambda im, n=n: imagehash.whash(im, n, mode="db4")
    for b in BINBITS:
        table[f"colorhash:{b}"] = lambda im, b=b: imagehash.colorhash(im, b)
    for spec in list(table):
        name, param = spec.split(":")
        if param == ("3" if name == "colorhash" else "8"):
            table[name] = table[spec]  # the default size, asked for by bare name
    return table


ORACLE = oracle_table()


def assert_same_as_imagehash(source: Path | Image.Image, image: Image.Image, specs: list[str]) -> None:
    if isinstance(source, Path):
        ours = lookalike.hash_file(source, specs, mode="exact", orientation=False)
    else:
        ours = lookalike.hash_image(source, specs, mode="exact", orientation=False)
    mismatches = []
    for spec in specs:
        if spec not in ORACLE:
            raise KeyError(spec)
        expected = str(ORACLE[spec](image))
        if str(ours[spec]) != expected:
            mismatches.append(f"{spec}: ours {ours[spec]} imagehash {expected}")
    assert not mismatches, "\n".join(mismatches)


def test_there_are_at_least_forty_real_photos() -> None:
    assert len(PHOTOS) >= 40


@pytest.mark.parametrize("path", PHOTOS, ids=lambda p: p.name)
def test_every_algorithm_and_size_matches_imagehash_on_photo(path: Path) -> None:
    with Image.open(path) as image:
        image.load()
        assert_same_as_imagehash(path, image, list(ORACLE))


@pytest.mark.parametrize("path", PHOTOS[::2], ids=lambda p: p.name)
def test_crop_resistant_matches_imagehash_on_photo(path: Path) -> None:
    with Image.open(path) as image:
        image.load()
        expected = imagehash.crop_resistant_hash(image)
    ours = lookalike.hash_file(path, ["crop_resistant"], mode="exact", orientation=False)
    assert str(ours["crop_resistant"]) == str(expected)


def _photo(index: int = 1) -> Image.Image:
    image = Image.open(PHOTOS[index])
    image.load()
    return image


def _sixteen_bit(image: Image.Image) -> Image.Image:
    values = np.asarray(image.convert("L"), dtype=np.uint16) * 257
    return Image.fromarray(values)  # mode I;16


def _int32(image: Image.Image) -> Image.Image:
    return Image.fromarray(np.asarray(image.convert("L"), dtype=np.int32) * 257)  # mode I


def _float(image: Image.Image) -> Image.Image:
    return image.convert("L").convert("F")


def _palette_with_transparency(image: Image.Image) -> Image.Image:
    paletted = image.convert("RGB").quantize(64)
    paletted.info["transparency"] = 0
    return paletted


AWKWARD_FILES: dict[str, tuple[Callable[[Image.Image], Image.Image], str]] = {
    "L.png": (lambda im: im.convert("L"), "PNG"),
    "L.jpg": (lambda im: im.convert("L"), "JPEG"),
    "LA.png": (lambda im: im.convert("LA"), "PNG"),
    "P.png": (lambda im: im.convert("RGB").quantize(200), "PNG"),
    "P-transparent.png": (_palette_with_transparency, "PNG"),
    "P.gif": (lambda im: im.convert("RGB").quantize(128), "GIF"),
    "RGBA.png": (lambda im: im.convert("RGBA"), "PNG"),
    "CMYK.jpg": (lambda im: im.convert("CMYK"), "JPEG"),
    "CMYK.tif": (lambda im: im.convert("CMYK"), "TIFF"),
    "I16.png": (_sixteen_bit, "PNG"),
    "I.tif": (_int32, "TIFF"),
    "F.tif": (_float, "TIFF"),
    "1bit.png": (lambda im: im.convert("1"), "PNG"),
    "RGB.bmp": (lambda im: im.convert("RGB"), "BMP"),
}


@pytest.mark.parametrize("name", list(AWKWARD_FILES))
def test_awkward_mode_files_match_imagehash(name: str, tmp_path: Path) -> None:
    make, fmt = AWKWARD_FILES[name]
    path = tmp_path / name
    make(_photo()).save(path, fmt)
    with Image.open(path) as image:
        image.load()
        assert_same_as_imagehash(
            path, image, ["ahash", "dhash", "phash:12", "whash", "colorhash", "whash_db4"]
        )


IN_MEMORY_MODES: dict[str, Callable[[Image.Image], Image.Image]] = {
    "PA": lambda im: im.convert("RGBA").convert("PA"),
    "YCbCr": lambda im: im.convert("YCbCr"),
    "HSV": lambda im: im.convert("HSV"),
    "RGBX": lambda im: im.convert("RGBX"),
    "I;16B": lambda im: Image.fromarray(np.asarray(_sixteen_bit(im)).astype(">u2")),
}


@pytest.mark.parametrize("mode", list(IN_MEMORY_MODES))
def test_awkward_in_memory_modes_match_imagehash(mode: str) -> None:
    image = IN_MEMORY_MODES[mode](_photo(2))
    assert image.mode == mode
    assert_same_as_imagehash(image, image, ["ahash", "dhash_vertical", "phash", "whash", "colorhash:4"])


@pytest.mark.parametrize("size", [(1, 1), (2, 2), (3, 500), (500, 3), (7, 5)])
def test_tiny_and_extreme_shapes_match_imagehash(size: tuple[int, int], tmp_path: Path) -> None:
    path = tmp_path / "tiny.png"
    _photo(3).convert("RGB").resize(size, Image.Resampling.BILINEAR).save(path)
    with Image.open(path) as image:
        image.load()
        assert_same_as_imagehash(
            path, image, ["ahash", "dhash", "dhash_vertical", "phash", "whash", "colorhash"]
        )


def test_large_rgb_colorhash_uses_table_and_matches_imagehash(tmp_path: Path) -> None:
    """Above 1.5 MP colorhash classifies pixels through the colour table: same bits."""
    path = tmp_path / "big.png"
    big = _photo(4).convert("RGB").resize((1800, 1200), Image.Resampling.BICUBIC)
    rng = np.random.default_rng(1)
    noisy = np.clip(np.asarray(big, dtype=np.int16) + rng.integers(-40, 40, (1200, 1800, 3)), 0, 255)
    Image.fromarray(noisy.astype(np.uint8)).save(path)
    with Image.open(path) as image:
        image.load()
        assert_same_as_imagehash(path, image, ["colorhash", "colorhash:5", "ahash"])
