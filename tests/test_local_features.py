"""Local features on committed photos: a crop, a mirrored crop and a picture inside a frame are
verified with the region they came from; a different photo is not."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image

from conftest import COMMITTED_PHOTOS
from lookalike.local.features import STORED_KEYPOINTS, LocalFeatures, extract, mirrored
from lookalike.local.verify import verify


def _gray(index: int) -> npt.NDArray[np.uint8]:
    return np.asarray(Image.open(COMMITTED_PHOTOS[index]).convert("L"))


def test_an_uneven_crop_is_found_with_the_region_it_was_cut_from() -> None:
    original = _gray(1)
    height, width = original.shape
    box = (int(width * 0.21), int(height * 0.08), int(width * 0.93), int(height * 0.71))
    crop = original[box[1] : box[3], box[0] : box[2]]
    found = verify(extract(crop), extract(original).compact())
    assert found is not None and not found.mirrored
    expected = np.array([[box[0] / width, box[1] / height], [box[2] / width, box[3] / height]])
    corners = np.array([found.stored_region.min(axis=0), found.stored_region.max(axis=0)])
    assert np.abs(corners - expected).max() < 0.02
    assert found.stored_coverage == pytest.approx(0.72 * 0.63, abs=0.03)


def test_a_mirrored_crop_needs_and_uses_the_mirrored_query() -> None:
    original = _gray(4)
    height, width = original.shape
    copy = mirrored(original[: int(height * 0.85), int(width * 0.1) :])
    stored = extract(original).compact()
    assert verify(extract(copy), stored) is None
    found = verify(extract(copy), stored, extract(mirrored(copy)))
    assert found is not None and found.mirrored


def test_a_photo_inside_a_frame_is_found_at_its_place_in_the_frame() -> None:
    photo = Image.open(COMMITTED_PHOTOS[6]).convert("L")
    canvas = Image.new("L", (photo.width * 2, photo.height * 2), 40)
    canvas.paste(photo, (photo.width // 2, photo.height // 3))
    found = verify(extract(np.asarray(photo)), extract(np.asarray(canvas)).compact())
    assert found is not None
    assert found.stored_region.min(axis=0) == pytest.approx([0.25, 1 / 6], abs=0.02)
    assert found.stored_coverage == pytest.approx(0.25, abs=0.02)


@pytest.mark.parametrize("other", [2, 9, 14])
def test_a_different_photo_is_not_verified(other: int) -> None:
    assert verify(extract(_gray(other)), extract(_gray(1)).compact()) is None


def test_stored_features_fit_in_4_kb_and_round_trip() -> None:
    stored = extract(_gray(3)).compact()
    data = stored.to_bytes()
    assert len(stored) == STORED_KEYPOINTS and len(data) <= 4096
    back = LocalFeatures.from_bytes(data)
    assert np.array_equal(back.descriptors, stored.descriptors)
    assert np.abs(back.points - stored.points).max() <= 1 / 16
