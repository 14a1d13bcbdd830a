"""Light crops of any shape (each side cut by its own few percent), turned or not, are the local
features' to find when the hashes' fixed crop shapes miss them: the default preset's duplicate
search pairs them with their originals, while two pictures whose frames coincide stay the
hashes' to judge."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image

from conftest import COMMITTED_PHOTOS, committed_rgb
from lookalike import open_index
from lookalike.candidates import stage
from lookalike.local.features import extract, mirrored
from lookalike.local.verify import verify
from lookalike.matcher import default_index_hashes

pytest.importorskip("cv2")


def _light_crop(image: Image.Image, rng: random.Random) -> Image.Image:
    """Each side cut by its own share (1-5%): each picture covers over 85% of the other."""
    width, height = image.size
    cuts = [rng.uniform(0.01, 0.05) for _ in range(4)]
    return image.crop(
        (
            round(width * cuts[0]),
            round(height * cuts[1]),
            round(width * (1 - cuts[2])),
            round(height * (1 - cuts[3])),
        )
    )


def _gray(image: Image.Image) -> npt.NDArray[np.uint8]:
    return np.asarray(image.convert("L"))


def test_a_light_crop_moves_the_frame_and_the_same_frame_does_not() -> None:
    photo = committed_rgb(COMMITTED_PHOTOS[3], 640)
    crop = _light_crop(photo, random.Random(1))
    stored = extract(_gray(photo)).compact()
    of_crop = verify(extract(_gray(crop)), stored)
    assert of_crop is not None and min(of_crop.stored_coverage, of_crop.query_coverage) >= stage.SAME_FRAME
    assert not stage.frames_coincide(of_crop)
    recoloured = Image.eval(photo, lambda v: min(255, int(v * 1.15)))
    of_same = verify(extract(_gray(recoloured)), stored)
    assert of_same is not None and stage.frames_coincide(of_same)
    flipped = photo.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    of_mirror = verify(extract(_gray(flipped)), stored, extract(mirrored(_gray(flipped))))
    assert of_mirror is not None and of_mirror.mirrored and stage.frames_coincide(of_mirror)


def test_light_crops_turned_upside_down_are_grouped_with_their_originals(tmp_path: Path) -> None:
    rng = random.Random(7)
    originals, copies = [], {}
    for index in range(12):
        photo = committed_rgb(COMMITTED_PHOTOS[index], 512)
        original = tmp_path / f"photo{index:02d}.png"
        photo.save(original)
        copy = tmp_path / f"photo{index:02d}-crop-flipped.jpg"
        _light_crop(photo, rng).transpose(Image.Transpose.FLIP_TOP_BOTTOM).save(copy, quality=90)
        originals.append(str(original))
        copies[copy.name] = original.name
    with open_index(str(tmp_path / "index.db")) as index:
        paths = [*originals, *(str(tmp_path / name) for name in copies)]
        index.add_files(paths, list(default_index_hashes()), dihedral=True, local=True, workers=1)
        groups = index.duplicates(matcher="near-duplicate")
    together = {
        Path(a.key).name: {Path(b.key).name for b in group.members} for group in groups for a in group.members
    }
    assert all(original in together.get(copy, set()) for copy, original in copies.items())
    assert all(len(group.members) == 2 for group in groups)  # no two photos joined
