"""A collage's cells cut at its gutters: every cell, whatever its borders look like (a bright photo
against a white gutter has no step along its side), in grids and in cuts within cuts, and nothing
cut in plain photos or in a page of an app."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from conftest import COMMITTED_PHOTOS, committed_rgb
from lookalike.benchmarks.partial import collage, collage_cells
from lookalike.gutters import gutter_cells
from lookalike.regions import propose_regions

Box = tuple[int, int, int, int]


def _near(found: list[Box], expected: list[Box], pixels: int = 2) -> bool:
    return len(found) == len(expected) and all(
        max(abs(a - b) for a, b in zip(f, e, strict=True)) <= pixels
        for f, e in zip(found, expected, strict=True)
    )


def _bright(image: Image.Image) -> Image.Image:
    """The photo washed out towards white: its edges as bright as a white gutter."""
    return Image.eval(image, lambda v: 190 + v // 4)


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_every_cell_of_a_2x2_collage_even_a_washed_out_photo_against_white(seed: int) -> None:
    photo = _bright(committed_rgb(COMMITTED_PHOTOS[seed], 480))
    others = [committed_rgb(COMMITTED_PHOTOS[i], 480) for i in (11, 14, 21)]
    image = collage(photo, seed, others)
    cells, _ = collage_cells(image.size)
    assert _near(gutter_cells(np.asarray(image)), cells)
    assert _near(propose_regions(np.asarray(image))[:4], cells)  # first, before the steps' boxes


def test_cuts_within_cuts_a_big_picture_beside_two_small_ones_on_black() -> None:
    canvas = Image.new("RGB", (640, 400), (0, 0, 0))
    boxes = [(6, 6, 380, 394), (386, 6, 634, 197), (386, 203, 634, 394)]
    for index, (left, top, right, bottom) in zip((1, 6, 15), boxes, strict=True):
        canvas.paste(
            committed_rgb(COMMITTED_PHOTOS[index], 640).resize((right - left, bottom - top)), (left, top)
        )
    assert _near(gutter_cells(np.asarray(canvas)), sorted(boxes, key=lambda b: (b[1], b[0])))


@pytest.mark.parametrize("index", range(len(COMMITTED_PHOTOS)))
def test_a_plain_photo_is_not_cut(index: int) -> None:
    assert gutter_cells(np.asarray(committed_rgb(COMMITTED_PHOTOS[index], 800))) == []


def test_a_chat_with_bubbles_on_its_background_is_not_cut() -> None:
    """Rows of background between bubbles span the page like gutters; the parts they cut are
    mostly background, not pictures."""
    page = Image.new("RGB", (540, 1170), (236, 229, 221))
    draw = ImageDraw.Draw(page)
    for row in range(12):
        top = 40 + row * 90
        left = 20 if row % 2 else 260
        draw.rounded_rectangle((left, top, left + 260, top + 60), 12, fill=(255, 255, 255))
        draw.text((left + 14, top + 20), "see you at the station", fill=(20, 20, 20))
    page.paste(committed_rgb(COMMITTED_PHOTOS[6], 300), (220, 700))
    assert gutter_cells(np.asarray(page)) == []
