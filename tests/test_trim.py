"""Trimming uniform borders: bars, padding and frames go; pictures and flat images stay whole."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from conftest import COMMITTED_PHOTOS, committed_rgb
from lookalike import hash_image
from lookalike.benchmarks.transforms import get_transform
from lookalike.trim import content_box, flat_share, trim_borders


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    return committed_rgb(COMMITTED_PHOTOS[4], 400)


def test_content_box_of_a_bordered_array() -> None:
    rng = np.random.default_rng(0)
    pixels = np.zeros((60, 80), dtype=np.uint8)
    pixels[10:50, 5:70] = rng.integers(0, 256, (40, 65))
    assert content_box(pixels) == (5, 10, 70, 50)


def test_a_picture_without_borders_is_returned_as_is(photo) -> None:
    assert trim_borders(photo) is photo


def test_a_flat_image_is_not_trimmed_to_nothing() -> None:
    flat = Image.new("RGB", (100, 80), (30, 30, 30))
    assert trim_borders(flat).size == (100, 80)


@pytest.mark.parametrize("name", ["pad_black_25", "pad_white_10", "frame", "screenshot"])
def test_trimming_recovers_the_photo_area(name, photo) -> None:
    copy = get_transform(name)(photo, 0)
    trimmed = trim_borders(copy)
    # the photo's aspect ratio comes back within a few percent
    assert trimmed.width / trimmed.height == pytest.approx(photo.width / photo.height, rel=0.06)


def test_trimmed_hashes_of_a_letterboxed_copy_match_the_photo(photo) -> None:
    copy = get_transform("pad_black_25")(photo, 0)
    original = hash_image(photo, ["phash"], trim=True)["phash"]
    plain = hash_image(copy, ["phash"])["phash"]
    trimmed = hash_image(copy, ["phash"], trim=True)["phash"]
    assert trimmed - original <= 4 < plain - original


def test_content_box_peels_textureless_bars_only_when_asked() -> None:
    rng = np.random.default_rng(1)
    pixels = np.empty((90, 80), dtype=np.uint8)
    pixels[:] = np.linspace(40, 200, 80, dtype=np.uint8)  # a smooth ramp: not flat, no texture
    pixels[20:70] = rng.integers(0, 256, (50, 80))
    assert content_box(pixels) == (0, 0, 80, 90)
    assert content_box(pixels, smooth=True) == (0, 20, 80, 70)


@pytest.mark.parametrize("name", ["pad_blur_25", "pad_blur_10"])
def test_smooth_trimming_finds_the_photo_inside_blurred_bars(name) -> None:
    """Bars filled with a blurred enlargement of the photo are not uniform, so the plain trim keeps
    them; the smooth trim peels them, and peels the photo's own smooth edges (a sky) the same way
    in the photo and in its copy, so their trimmed hashes agree, on most committed photos."""
    algorithms = ["phash_eq_trimmed", "phash_eq_trimmed_smooth"]
    agree = {name: 0 for name in algorithms}
    for path in COMMITTED_PHOTOS[:12]:
        original = committed_rgb(path, 400)
        copy = get_transform(name)(original, 0)
        hashes, copy_hashes = hash_image(original, algorithms), hash_image(copy, algorithms)
        for algorithm in algorithms:
            agree[algorithm] += copy_hashes[algorithm] - hashes[algorithm] <= 24
    assert agree["phash_eq_trimmed_smooth"] >= 9
    assert agree["phash_eq_trimmed"] <= 3


def test_content_down_to_a_tenth_of_a_side_is_kept() -> None:
    """A dim photo in a phone screenshot: black screen, black sky, a small bright nebula. The
    content is 11% of the screen's height; trimming finds it rather than giving up."""
    rng = np.random.default_rng(2)
    pixels = np.zeros((200, 100), dtype=np.uint8)
    pixels[90:112, 30:70] = rng.integers(60, 256, (22, 40))
    assert content_box(pixels) == (30, 90, 70, 112)
    assert content_box(pixels, min_keep=0.2) == (30, 0, 70, 200)  # the old limit kept the black rows


def _rows_within_tolerance_of_their_median(pixels: np.ndarray, tolerance: int) -> np.ndarray:
    """flat_share's definition, written the slow and obvious way."""
    values = pixels.astype(np.float64)
    median = np.median(values, axis=1, keepdims=True)
    return (np.abs(values - median) <= tolerance).mean(axis=1)


@pytest.mark.parametrize("path", COMMITTED_PHOTOS[:6], ids=lambda p: p.name)
def test_flat_share_is_the_share_of_each_line_near_its_median(path) -> None:
    gray = np.asarray(committed_rgb(path, 192).convert("L"))
    bars = np.pad(gray, ((9, 8), (3, 0)), constant_values=17)  # uniform lines, odd and even counts
    for pixels in (gray, gray.T, bars, bars.T, bars[:, :1]):
        for tolerance in (0, 10):
            expected = _rows_within_tolerance_of_their_median(pixels, tolerance)
            assert np.array_equal(flat_share(pixels, tolerance), expected)
