"""colorhash's fast paths (colour table, grayscale shortcut, reused buffers) give ImageHash's bits."""

from __future__ import annotations

import imagehash
import numpy as np
import pytest
from PIL import Image

import lookalike
from conftest import COMMITTED_PHOTOS
from lookalike.algorithms import color


def _noisy(index: int, size: tuple[int, int], mode: str) -> Image.Image:
    with Image.open(COMMITTED_PHOTOS[index]) as image:
        base = np.asarray(image.convert("RGB").resize(size, Image.Resampling.BILINEAR), dtype=np.int16)
    rng = np.random.default_rng(index)
    noisy = np.clip(base + rng.integers(-30, 30, base.shape), 0, 255).astype(np.uint8)
    rgb = Image.fromarray(noisy)
    if mode == "RGBA":
        alpha = Image.fromarray(rng.integers(0, 256, size[::-1], dtype=np.uint8))
        rgb.putalpha(alpha)
    return rgb.convert(mode) if mode != "RGBA" else rgb


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L"])
def test_large_images_take_the_fast_path_and_match_imagehash(mode: str) -> None:
    image = _noisy(7, (1600, 1000), mode)
    assert image.width * image.height >= color.TABLE_MIN_PIXELS
    ours = lookalike.hash_image(image, ["colorhash", "colorhash:5"], mode="exact", orientation=False)
    assert str(ours["colorhash"]) == str(imagehash.colorhash(image))
    assert str(ours["colorhash:5"]) == str(imagehash.colorhash(image, 5))


def test_reused_buffers_do_not_leak_pixels_between_images() -> None:
    big, small = _noisy(8, (2000, 1200), "RGB"), _noisy(9, (1300, 1200), "RGB")
    for image in (big, small, big):
        ours = lookalike.hash_image(image, ["colorhash:4"], mode="exact", orientation=False)
        assert str(ours["colorhash:4"]) == str(imagehash.colorhash(image, 4))


def test_table_lookup_classifies_like_pillow_hsv_on_every_pixel() -> None:
    image = _noisy(10, (700, 500), "RGB")
    via_hsv = color.color_counts_via_hsv(image, image.convert("L"))
    via_table = color.color_counts_via_table(image)
    assert via_table == via_hsv


def test_saturation_hue_lookup_equals_the_rules_for_every_byte_triple_sampled() -> None:
    rng = np.random.default_rng(3)
    intensity, hue, saturation = (rng.integers(0, 256, 200_000, dtype=np.uint8) for _ in range(3))
    for edge in (color.GRAY_BELOW, color.FAINT_BELOW, color.BLACK_BELOW):  # the thresholds themselves
        saturation[:256], intensity[256:512] = edge, edge
    assert np.array_equal(
        color.categorize(intensity, hue, saturation), color.categorize_by_rules(intensity, hue, saturation)
    )


def test_small_images_build_the_colour_table_once_hsv_would_have_paid_for_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(color, "_table", None)
    monkeypatch.setattr(color, "_looked_on_disk", True)  # nothing on disk: only a build gives it
    monkeypatch.setattr(color, "_hsv_pixels", 0)
    monkeypatch.setattr(color, "TABLE_PAYS_OFF_PIXELS", 1_000_000)
    image = _noisy(11, (800, 500), "RGB")  # 0.4 MP: below TABLE_MIN_PIXELS
    expected = str(imagehash.colorhash(image))
    seen_tables = []
    for _ in range(4):
        assert str(lookalike.hash_image(image, ["colorhash"], mode="exact")["colorhash"]) == expected
        seen_tables.append(color._table is not None)
    assert seen_tables == [False, False, False, True]  # 0.4, 0.8, 1.2 MP through HSV, then the table
