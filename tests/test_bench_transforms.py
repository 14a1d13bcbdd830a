"""The benchmark's transforms: deterministic, and each does what its name says."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from conftest import COMMITTED_PHOTOS, committed_rgb
from lookalike.benchmarks.transforms import (
    PARTIAL_FAMILIES,
    TRANSFORMS,
    families,
    get_transform,
    select,
    stable_seed,
)


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    return committed_rgb(COMMITTED_PHOTOS[1], 240)


@pytest.fixture(scope="module")
def donors() -> list[Image.Image]:
    """Three other photos, for the composites (picture in picture, collage)."""
    return [committed_rgb(COMMITTED_PHOTOS[i], 240) for i in (2, 4, 5)]


def test_registry_covers_every_family_the_benchmark_reports() -> None:
    assert set(families()) == {
        "jpeg", "resize", "crop", "crop_heavy", "pad", "rotate", "tilt", "flip", "colour",
        "filter", "overlay", "frame", "squash", "screenshot",
        "crop_uneven", "crop_uneven_mirror", "crop_uneven_heavy", "crop_vflip", "rotate_crop",
        "perspective", "pip", "collage", "screenshot_small",
    }  # fmt: skip
    assert set(PARTIAL_FAMILIES) <= set(families())
    assert len({t.name for t in TRANSFORMS}) == len(TRANSFORMS)
    assert {t.name: t.donors for t in TRANSFORMS if t.donors} == {"pip": 1, "collage": 3}


@pytest.mark.parametrize("transform", TRANSFORMS, ids=lambda t: t.name)
def test_transform_is_deterministic_and_leaves_its_input_alone(transform, photo, donors) -> None:
    given = donors[: transform.donors]
    before = [np.asarray(image).copy() for image in (photo, *given)]
    first = transform(photo, 7, given)
    second = transform(photo, 7, given)
    assert np.array_equal(np.asarray(first), np.asarray(second))
    assert all(np.array_equal(np.asarray(image), b) for image, b in zip((photo, *given), before, strict=True))
    assert first.mode == ("L" if transform.name == "grayscale" else "RGB")


def test_a_composite_needs_its_donors_and_a_plain_edit_takes_none(photo, donors) -> None:
    with pytest.raises(ValueError, match="collage takes 3 other photos, got 1"):
        get_transform("collage")(photo, 0, donors[:1])
    with pytest.raises(ValueError, match="jpeg_50 takes 0 other photos"):
        get_transform("jpeg_50")(photo, 0, donors[:1])


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


# ----- partial copies (issue 18) ------------------------------------------------------------------


def locate(part: np.ndarray, whole: np.ndarray) -> tuple[int, int]:
    """Where `part` lies in `whole`, pixel for pixel: (left, top); fails if nowhere."""
    height, width = part.shape[:2]
    room = whole[: whole.shape[0] - height + 1, : whole.shape[1] - width + 1]
    for top, left in np.argwhere((room == part[0, 0]).all(axis=-1)):  # where its corner pixel could go
        if np.array_equal(whole[top : top + height, left : left + width], part):
            return int(left), int(top)
    raise AssertionError("not a crop of the photo")


def test_light_uneven_crops_keep_80_percent_of_each_side_and_cut_each_side_its_own_way(photo) -> None:
    pixels = np.asarray(photo)
    width, height = photo.size
    boxes = set()
    for seed in range(30):
        crop = np.asarray(get_transform("crop_uneven_light")(photo, seed))
        left, top = locate(crop, pixels)
        cuts = (left, width - left - crop.shape[1], top, height - top - crop.shape[0])
        assert crop.shape[1] >= 0.8 * width and crop.shape[0] >= 0.8 * height
        assert min(cuts) >= 0
        boxes.add(cuts)
        mirrored = np.asarray(get_transform("crop_uneven_light_flip")(photo, seed))[:, ::-1]
        assert mirrored.shape[1] >= 0.8 * width and mirrored.shape[0] >= 0.8 * height
        locate(mirrored, pixels)
    assert len(boxes) == 30  # a box drawn per seed, not a few fixed shapes
    assert sum(left != right and top != bottom for left, right, top, bottom in boxes) >= 25  # uneven


def test_heavy_uneven_crops_keep_30_to_60_percent_of_the_area_off_centre(photo) -> None:
    pixels = np.asarray(photo)
    width, height = photo.size
    for seed in range(20):
        crop = np.asarray(get_transform("crop_uneven_heavy")(photo, seed))
        left, top = locate(crop, pixels)
        area = crop.shape[0] * crop.shape[1] / (width * height)
        assert 0.29 <= area <= 0.61, area
        off_x = abs(left + crop.shape[1] / 2 - width / 2) / width
        off_y = abs(top + crop.shape[0] / 2 - height / 2) / height
        assert max(off_x, off_y) >= 0.03, (seed, off_x, off_y)


def test_crop_and_vertical_flip_is_an_upside_down_light_crop(photo) -> None:
    flipped = np.asarray(get_transform("crop_flip_vertical")(photo, 3))
    upright = flipped[::-1]
    assert upright.shape[0] >= 0.8 * photo.height and upright.shape[1] >= 0.8 * photo.width
    locate(upright, np.asarray(photo))


def test_rotation_with_crop_turns_10_to_45_degrees_and_leaves_no_black_corners(photo) -> None:
    white = Image.new("RGB", (300, 200), (255, 255, 255))
    for seed in range(12):
        rotated = np.asarray(get_transform("rotate_crop")(white, seed))
        assert rotated.min() >= 250, seed  # nothing of the black fill outside the picture
        assert rotated.shape[0] < 200 and rotated.shape[1] < 300
    result = get_transform("rotate_crop")(photo, 1)
    assert result.width < photo.width and result.height < photo.height


def _fits_rotated(inner: tuple[float, float], outer: tuple[int, int], radians: float) -> bool:
    """Whether a centred `inner` rectangle lies inside `outer` rotated by `radians`."""
    rotate_back = np.array([[np.cos(radians), np.sin(radians)], [-np.sin(radians), np.cos(radians)]])
    w, h = inner
    corners = np.array([[w, h], [w, -h], [-w, h], [-w, -h]]) / 2 @ rotate_back.T
    return bool((np.abs(corners) <= np.array(outer) / 2 + 1e-6).all())


@pytest.mark.parametrize("size", [(300, 200), (200, 300), (512, 128), (100, 100)])
def test_the_inscribed_rectangle_fits_the_rotated_picture_and_is_the_largest(size) -> None:
    from lookalike.benchmarks.partial import inscribed_size

    for degrees in (3, 10, 25, 37, 45, 60, 80):
        radians = float(np.radians(degrees))
        inner_w, inner_h = inscribed_size(*size, radians)
        assert _fits_rotated((inner_w, inner_h), size, radians), (size, degrees)
        assert not _fits_rotated((inner_w * 1.02, inner_h * 1.02), size, radians), (size, degrees)


def test_perspective_is_a_mild_keystone_without_black_triangles(photo) -> None:
    white = Image.new("RGB", (300, 200), (255, 255, 255))
    sides = set()
    for seed in range(12):
        warped = get_transform("perspective")(white, seed)
        assert np.asarray(warped).min() >= 240, seed
        kept = (warped.width / 300, warped.height / 200)
        assert min(kept) >= 0.8 and max(kept) == 1.0, kept  # cropped along one axis only
        sides.add(kept.index(min(kept)))
    assert sides == {0, 1}  # the short side is drawn at random: horizontal and vertical keystones
    assert not np.array_equal(np.asarray(get_transform("perspective")(photo, 2)), np.asarray(photo))


def test_picture_in_picture_puts_the_photo_at_30_to_70_percent_inside_the_other_photo(photo, donors) -> None:
    from PIL import ImageOps

    host = np.asarray(ImageOps.fit(donors[0], photo.size, Image.Resampling.BICUBIC)).astype(int)
    scales = set()
    for seed in range(8):
        canvas = np.asarray(get_transform("pip")(photo, seed, donors[:1])).astype(int)
        assert canvas.shape == host.shape  # the other photo at the photo's own size
        rows, columns = np.nonzero(np.abs(canvas - host).max(axis=2) > 0)
        top, bottom, left, right = rows.min(), rows.max() + 1, columns.min(), columns.max() + 1
        scale = (right - left) / photo.width
        assert 0.29 <= scale <= 0.71 and abs((bottom - top) / photo.height - scale) < 0.02, scale
        inset = np.asarray(photo.resize((right - left, bottom - top), Image.Resampling.LANCZOS)).astype(int)
        assert np.abs(canvas[top:bottom, left:right] - inset).mean() < 2  # the photo itself, scaled
        scales.add(round(scale, 2))
    assert len(scales) > 4


def test_a_collage_has_four_cells_the_photo_in_one_and_the_three_others_around(photo, donors) -> None:
    from PIL import ImageOps

    from lookalike.benchmarks.partial import collage_cells

    cells, gutter = collage_cells(photo.size)
    assert len(cells) == 4 and gutter >= 2
    places = set()
    for seed in range(10):
        canvas = np.asarray(get_transform("collage")(photo, seed, donors)).astype(int)
        assert canvas.shape[:2] == (photo.height, photo.width)
        assert (canvas[:gutter] == 255).all() and (canvas[:, :gutter] == 255).all()  # white gutters
        others = iter(donors)
        for number, (left, top, right, bottom) in enumerate(cells):
            size = (right - left, bottom - top)
            assert size[0] >= photo.width // 2 - 2 * gutter and size[1] >= photo.height // 2 - 2 * gutter
            cell = canvas[top:bottom, left:right]
            shown = np.asarray(photo.resize(size, Image.Resampling.LANCZOS)).astype(int)
            if np.abs(cell - shown).mean() < 1:
                places.add(number)
                continue
            other = np.asarray(ImageOps.fit(next(others), size, Image.Resampling.BICUBIC)).astype(int)
            assert np.abs(cell - other).mean() < 1, (seed, number)
        assert next(others, None) is None  # the photo was in exactly one cell
    assert len(places) >= 3


@pytest.mark.parametrize(
    ("name", "screen"), [("screenshot_chat", (540, 1170)), ("screenshot_desktop", (1280, 800))]
)
def test_small_photo_screenshots_show_it_30_to_60_percent_of_the_screen_wide(name, screen) -> None:
    magenta = Image.new("RGB", (400, 300), (255, 0, 255))  # a colour no screen element uses
    shares = set()
    for seed in range(6):
        shot = np.asarray(get_transform(name)(magenta, seed)).astype(int)
        assert shot.shape[:2] == (screen[1], screen[0])
        found = (np.abs(shot - (255, 0, 255)).max(axis=2) < 10).nonzero()
        share = (found[1].max() + 1 - found[1].min()) / screen[0]
        assert 0.3 - 0.01 <= share <= 0.6 + 0.01, (seed, share)
        assert len(found[0]) < 0.5 * screen[0] * screen[1]  # UI and text around it
        shares.add(round(share, 2))
    assert len(shares) > 3
