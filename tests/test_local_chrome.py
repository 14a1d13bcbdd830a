"""Screenshots in one app's chrome: two different photos shown in it share the app's bar and its
text, not a picture, and verification must not pair them; the same photo in two apps' chrome,
or a crop of it, is still a copy. The screens are drawn here from scikit-image's bundled photos."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import pytest
import skimage.data
from PIL import Image, ImageDraw, ImageFont

from lookalike.local.features import LocalFeatures, extract, mirrored
from lookalike.local.verify import verify

PARTIAL_COPY_INLIERS = 10  # the partial-copy preset's `local >= 10`: the most lenient


def _photo(name: str) -> Image.Image:
    return Image.fromarray(getattr(skimage.data, name)()).convert("L")


def _app_screen(photo: Image.Image, title: str, bar: int, bottom: int = 0) -> npt.NDArray[np.uint8]:
    """A 720 x 1560 phone screen: a dark bar with `title` on top, the photo fitted in the middle
    on black, and optionally a toolbar with labels at the bottom."""
    width, height = 720, 1560
    screen = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(screen)
    draw.rectangle((0, 0, width, bar), 34)
    draw.text((36, bar // 2 - 10), title, 240, font=ImageFont.load_default(size=bar // 4))
    area = (width, height - bar - bottom)
    scale = min(area[0] / photo.width, area[1] / photo.height)
    shown = photo.resize((round(photo.width * scale), round(photo.height * scale)), Image.Resampling.BICUBIC)
    screen.paste(shown, ((width - shown.width) // 2, bar + (area[1] - shown.height) // 2))
    if bottom:
        draw.rectangle((0, height - bottom, width, height), 20)
        labels = "Reply    Forward    Save"
        draw.text(
            (40, height - bottom + bottom // 3), labels, 220, font=ImageFont.load_default(size=bottom // 3)
        )
    return np.asarray(screen)


def _gallery(photo: Image.Image) -> npt.NDArray[np.uint8]:
    return _app_screen(photo, "Gallery  >  Holiday", bar=200)


def _messenger(photo: Image.Image) -> npt.NDArray[np.uint8]:
    return _app_screen(photo, "< Back   Photo", bar=150, bottom=120)


def _stored(gray: npt.NDArray[np.uint8]) -> tuple[LocalFeatures, LocalFeatures]:
    """What an index keeps of an image, and of its mirror image: a duplicate search compares these."""
    return extract(gray).compact(), extract(mirrored(gray)).compact()


@pytest.mark.parametrize(
    ("first", "second"),
    [("coffee", "rocket"), ("immunohistochemistry", "astronaut"), ("immunohistochemistry", "chelsea")],
)
def test_different_photos_in_the_same_app_chrome_are_not_verified(first: str, second: str) -> None:
    # Before inliers counted once per place, these verified on the title's letters (24-31
    # inliers) with a chance match in the photos fixing the transform.
    query, query_mirrored = _stored(_gallery(_photo(first)))
    stored, _ = _stored(_gallery(_photo(second)))
    assert verify(query, stored, query_mirrored, min_inliers=PARTIAL_COPY_INLIERS) is None


@pytest.mark.parametrize(
    ("name", "app"), [("astronaut", _gallery), ("astronaut", _messenger), ("chelsea", _messenger)]
)
def test_a_photo_is_found_in_screenshots_of_it_in_either_app(
    name: str, app: Callable[[Image.Image], npt.NDArray[np.uint8]]
) -> None:
    photo = _photo(name)
    query, query_mirrored = _stored(np.asarray(photo))
    found = verify(query, _stored(app(photo))[0], query_mirrored, min_inliers=PARTIAL_COPY_INLIERS)
    assert found is not None and not found.mirrored
    assert found.query_coverage > 0.95  # all of the photo is in the screenshot


def test_a_crop_is_found_in_a_screenshot_of_its_photo() -> None:
    photo = _photo("astronaut")
    crop = np.asarray(photo)[40:480, 30:460]
    found = verify(extract(crop), _stored(_messenger(photo))[0], extract(mirrored(crop)))
    assert found is not None and not found.mirrored
