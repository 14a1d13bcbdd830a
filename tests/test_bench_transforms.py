"""The benchmark's transforms: deterministic, and each does what its name says."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from conftest import COMMITTED_PHOTOS, committed_rgb
from lookalike.benchmarks.transforms import TRANSFORMS, families, get_transform, select, stable_seed


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    return committed_rgb(COMMITTED_PHOTOS[1], 240)


def test_registry_covers_every_family_the_benchmark_reports() -> None:
    assert set(families()) == {
        "jpeg", "resize", "crop", "crop_heavy", "pad", "rotate", "tilt", "flip", "colour",
        "filter", "overlay", "frame", "squash", "screenshot",
    }  # fmt: skip
    assert len({t.name for t in TRANSFORMS}) == len(TRANSFORMS)


@pytest.mark.parametrize("transform", TRANSFORMS, ids=lambda t: t.name)
def test_transform_is_deterministic_and_leaves_its_input_alone(transform, photo) -> None:
    before = np.asarray(photo).copy()
    first = transform(photo, 7)
    second = transform(photo, 7)
    assert np.array_equal(np.asarray(first), np.asarray(second))
    assert np.array_equal(np.asarray(photo), before)
    assert first.mode == ("L" if transform.name == "grayscale" else "RGB")


def test_noise_depends_on_the_seed(photo) -> None:
    noise = get_transform("noise")
    assert not np.array_equal(np.asarray(noise(photo, 1)), np.asarray(noise(photo, 2)))


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("resize_50", lambda w, h: (round(w * 0.5), round(h * 0.5))),
        ("resize_25", lambda w, h: (round(w * 0.25), round(h * 0.25))),
        ("crop_left_10", lambda w, h: (w - round(w * 0.1), h)),
        ("crop_top_20", lambda w, h: (w, h - round(h * 0.2))),
        ("crop_centre_10", lambda w, h: (w - round(w * 0.1), h - round(h * 0.1))),
        ("rotate_90", lambda w, h: (h, w)),
        ("rotate_180", lambda w, h: (w, h)),
        ("tilt_3", lambda w, h: (w, h)),
        ("squash", lambda w, h: (round(w * 0.75), h)),
        ("jpeg_20", lambda w, h: (w, h)),
    ],
)
def test_sizes_follow_the_transform(name, expected, photo) -> None:
    assert get_transform(name)(photo, 0).size == expected(*photo.size)


def test_crops_keep_the_right_part_of_the_picture(photo) -> None:
    width = photo.width
    cut = round(width * 0.1)
    left = np.asarray(get_transform("crop_left_10")(photo, 0))
    assert np.array_equal(left, np.asarray(photo)[:, cut:])
    right = np.asarray(get_transform("crop_right_10")(photo, 0))
    assert np.array_equal(right, np.asarray(photo)[:, : width - cut])


def test_letterbox_adds_bars_of_the_stated_fill_around_the_unchanged_photo(photo) -> None:
    width, height = photo.size
    assert width >= height  # the fixture is landscape: bars go above and below
    bar = round(height * 0.25)
    padded = np.asarray(get_transform("pad_white_25")(photo, 0))
    assert padded.shape == (height + 2 * bar, width, 3)
    assert (padded[:bar] == 255).all() and (padded[-bar:] == 255).all()
    assert np.array_equal(padded[bar : bar + height], np.asarray(photo))
    black = np.asarray(get_transform("pad_black_10")(photo, 0))
    assert (black[: round(height * 0.1)] == 0).all()
    blurred = np.asarray(get_transform("pad_blur_10")(photo, 0))
    assert blurred[: round(height * 0.1)].std() > 1  # a blurred picture, not a flat bar


def test_flips_and_rotations_are_exact(photo) -> None:
    pixels = np.asarray(photo)
    assert np.array_equal(np.asarray(get_transform("flip_horizontal")(photo, 0)), pixels[:, ::-1])
    assert np.array_equal(np.asarray(get_transform("flip_vertical")(photo, 0)), pixels[::-1])
    assert np.array_equal(np.asarray(get_transform("rotate_180")(photo, 0)), pixels[::-1, ::-1])
    assert np.array_equal(np.asarray(get_transform("rotate_90")(photo, 0)), np.rot90(pixels))


def test_colour_edits_change_colour_not_geometry(photo) -> None:
    pixels = np.asarray(photo).astype(float)
    brighter = np.asarray(get_transform("brightness_1.3")(photo, 0)).astype(float)
    assert brighter.mean() > pixels.mean() + 5
    gray = np.asarray(get_transform("grayscale")(photo, 0))
    assert gray.ndim == 2
    sepia = np.asarray(get_transform("sepia")(photo, 0)).astype(int)
    assert (sepia[..., 0] >= sepia[..., 2]).mean() > 0.95  # warm: red above blue
    gamma = np.asarray(get_transform("gamma_0.6")(photo, 0)).astype(float)
    assert gamma.mean() > pixels.mean()


def test_overlays_change_only_part_of_the_picture(photo) -> None:
    pixels = np.asarray(photo)
    for name in ("text", "watermark", "logo"):
        changed = (np.asarray(get_transform(name)(photo, 0)) != pixels).any(axis=2).mean()
        assert 0.005 < changed < 0.6, name


def test_frame_and_screenshot_contain_the_photo_smaller_than_the_canvas(photo) -> None:
    framed = get_transform("frame")(photo, 0)
    assert framed.width > photo.width and framed.height > photo.height
    shot = get_transform("screenshot")(photo, 0)
    assert shot.size == (540, round(540 * 19.5 / 9))


def test_select_and_seeds() -> None:
    assert [t.name for t in select(["jpeg_50", "blur"])] == ["jpeg_50", "blur"]
    with pytest.raises(KeyError):
        select(["no_such_edit"])
    assert stable_seed("a", "b") == stable_seed("a", "b") != stable_seed("b", "a")
