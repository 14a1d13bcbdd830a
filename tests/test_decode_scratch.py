"""Exact mode decodes big RGB JPEGs straight into a reused buffer: same pixels, same hashes."""

from __future__ import annotations

from pathlib import Path

import imagehash
import numpy as np
from PIL import Image

import lookalike
from conftest import COMMITTED_PHOTOS
from lookalike.decode import decode


def _jpeg(path: Path, index: int, size: tuple[int, int], orientation: int | None = None) -> Path:
    with Image.open(COMMITTED_PHOTOS[index]) as image:
        big = image.convert("RGB").resize(size, Image.Resampling.BICUBIC)
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    big.save(path, "JPEG", quality=90, exif=exif)
    return path


def test_scratch_words_are_the_decoded_pixels(tmp_path: Path) -> None:
    path = _jpeg(tmp_path / "a.jpg", 11, (640, 480))
    decoded = decode(path, into_scratch=True)
    assert decoded.words is not None and decoded.image.mode == "RGBX"
    with Image.open(path) as plain:
        rgb = np.asarray(plain.convert("RGB"), dtype=np.uint32).reshape(-1, 3)
    expected = rgb[:, 0] | rgb[:, 1] << 8 | rgb[:, 2] << 16 | np.uint32(0xFF) << 24
    assert np.array_equal(decoded.words, expected)


def test_images_hashed_one_after_another_through_the_buffer_match_imagehash(tmp_path: Path) -> None:
    sizes = [(1800, 1200), (1300, 1200), (1600, 1000)]  # shrinking, then growing again
    paths = [_jpeg(tmp_path / f"{i}.jpg", 12 + i, size) for i, size in enumerate(sizes)]
    for path in paths + paths[:1]:
        ours = lookalike.hash_file(path, ["ahash", "colorhash"], mode="exact", orientation=False)
        with Image.open(path) as image:
            assert str(ours["ahash"]) == str(imagehash.average_hash(image))
            assert str(ours["colorhash"]) == str(imagehash.colorhash(image))


def test_a_rotated_photo_keeps_no_stale_words(tmp_path: Path) -> None:
    path = _jpeg(tmp_path / "rotated.jpg", 14, (1600, 1000), orientation=6)
    decoded = decode(path, into_scratch=True)
    assert decoded.words is None and decoded.image.size == (1000, 1600)
    upright = lookalike.hash_file(path, ["colorhash", "ahash"], mode="exact")
    with Image.open(path) as image:
        turned = image.transpose(Image.Transpose.ROTATE_270)
        assert str(upright["ahash"]) == str(imagehash.average_hash(turned))
        assert str(upright["colorhash"]) == str(imagehash.colorhash(turned))
