"""Pictures on a page: a photo whose edge has nearly the page's colour (an overexposed sky on a
white web page) has no stepping border along that side, yet stands out from the page's one
colour; text and bars on the page are not taken for pictures."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from lookalike.pages import page_pieces
from lookalike.regions import ANALYSIS_SIDE, _planes, propose_regions

PLACE = (520, 260)


def _web_page(photo: Image.Image) -> Image.Image:
    """A white blog page (header bar, two columns of text) with `photo` at `PLACE`."""
    page = Image.new("RGB", (1280, 800), (255, 255, 255))
    draw = ImageDraw.Draw(page)
    draw.rectangle((0, 0, 1280, 60), fill=(38, 70, 120))
    draw.text((40, 20), "THE TRAVEL DIARY", fill=(255, 255, 255))
    for y in range(100, 760, 24):
        draw.text((60, y), "a day by the water, see you there when the sun goes down", fill=(60, 60, 60))
        draw.text((900, y), "we are here and there and that is great", fill=(60, 60, 60))
    page.paste(photo, PLACE)
    return page


def _washed_out(name: str) -> Image.Image:
    """A scikit-image photo whose top fades to near white, as an overexposed sky does."""
    from skimage import data

    photo = Image.fromarray(getattr(data, name)()).convert("RGB")
    photo.thumbnail((320, 260))
    pixels = np.asarray(photo).astype(np.float64)
    fade = np.clip(1 - np.arange(pixels.shape[0]) / (0.4 * pixels.shape[0]), 0, 1)[:, None, None]
    return Image.fromarray((pixels * (1 - fade) + 248 * fade).astype(np.uint8))


@pytest.mark.parametrize("name", ["coffee", "chelsea", "astronaut", "camera"])
def test_a_photo_fading_into_a_white_page_is_proposed_at_its_box(name: str) -> None:
    photo = _washed_out(name)
    box = (*PLACE, PLACE[0] + photo.width, PLACE[1] + photo.height)
    assert box in propose_regions(np.asarray(_web_page(photo)))


def test_a_page_of_text_alone_has_no_pictures() -> None:
    """The header bar stands out from the page as a solid piece, but it is a flat panel with
    letters on it; the text is many small pieces."""
    page = np.asarray(_web_page(Image.new("RGB", (1, 1), (255, 255, 255))))
    assert propose_regions(page) == []


def test_a_photo_is_not_a_page() -> None:
    """No colour covers a fifth of an ordinary photo, so there is no page to stand out from."""
    from skimage import data

    photo = np.asarray(Image.fromarray(data.astronaut()))
    scale = min(1.0, ANALYSIS_SIDE / max(photo.shape[:2]))
    assert page_pieces(_planes(photo, scale)) == []
