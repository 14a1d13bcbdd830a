"""Fast mode: reduced-scale JPEG decoding and one box reduction, a bit or two from exact mode."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import lookalike
from conftest import COMMITTED_PHOTOS, all_photos
from lookalike.decode import decode
from lookalike.pipeline import HashOptions
from lookalike.prepare import ImageView


def _large(path: Path, size: tuple[int, int], fmt: str) -> Path:
    with Image.open(COMMITTED_PHOTOS[6]) as image:
        image.convert("RGB").resize(size, Image.Resampling.BICUBIC).save(path, fmt)
    return path


@pytest.mark.parametrize(("min_side", "scale", "size"), [(128, 8, (300, 200)), (256, 4, (600, 400))])
def test_jpeg_decodes_at_the_smallest_dct_scale_that_keeps_the_working_side(
    tmp_path: Path, min_side: int, scale: int, size: tuple[int, int]
) -> None:
    path = _large(tmp_path / "big.jpg", (2400, 1600), "JPEG")
    decoded = decode(path, draft_min_side=min_side)
    assert decoded.draft_scale == scale and decoded.image.size == size
    assert (decoded.width, decoded.height) == (2400, 1600)  # the file's own size is still reported


def test_small_jpeg_is_never_upscaled(tmp_path: Path) -> None:
    path = _large(tmp_path / "small.jpg", (100, 80), "JPEG")
    decoded = decode(path, draft_min_side=128)
    assert decoded.draft_scale == 1 and decoded.image.size == (100, 80)
    view = ImageView(decoded, "fast", 128)
    assert view.size == (100, 80)


def test_other_formats_are_box_reduced_once_to_the_working_side(tmp_path: Path) -> None:
    path = _large(tmp_path / "big.png", (2000, 1500), "PNG")
    view = ImageView(decode(path, draft_min_side=128), "fast", 128)
    assert 128 <= min(view.size) < 256
    assert ImageView(decode(path), "exact").size == (2000, 1500)


def test_the_working_side_is_the_largest_any_requested_algorithm_needs() -> None:
    sides = {
        name: HashOptions.build([name]).working_side
        for name in ["ahash", "dhash", "phash", "whash", "colorhash"]
    }
    assert HashOptions.build(list(sides)).working_side == max(sides.values())
    assert HashOptions.build(["ahash:16"]).working_side >= 16 * 8  # grows with the hash size


def test_fast_mode_is_within_a_bit_on_average_of_exact_on_real_photos() -> None:
    names = ["ahash", "dhash", "phash"]
    distances: dict[str, list[int]] = {name: [] for name in names}
    for path in all_photos():
        exact = lookalike.hash_file(path, names, mode="exact")
        fast = lookalike.hash_file(path, names, mode="fast")
        for name in names:
            distances[name].append(exact[name] - fast[name])  # type: ignore[operator]
    for name, values in distances.items():
        assert np.mean(values) <= 1.0, (name, values)
        assert max(values) <= 8, (name, values)


def test_fast_mode_scales_16_bit_images_where_exact_mode_clips_like_imagehash(tmp_path: Path) -> None:
    with Image.open(COMMITTED_PHOTOS[2]) as image:
        gray = np.asarray(image.convert("L"), dtype=np.uint16)
    sixteen = tmp_path / "sixteen.png"
    eight = tmp_path / "eight.png"
    Image.fromarray(gray * 257).save(sixteen)  # full 16-bit range
    Image.fromarray(gray.astype(np.uint8)).save(eight)
    names = ["ahash", "phash", "colorhash"]
    assert dict(lookalike.hash_file(sixteen, names)) == dict(lookalike.hash_file(eight, names))
    clipped = lookalike.hash_file(sixteen, ["colorhash"], mode="exact")["colorhash"]
    assert clipped != lookalike.hash_file(eight, ["colorhash"], mode="exact")["colorhash"]
