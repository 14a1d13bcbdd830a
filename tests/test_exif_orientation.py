"""EXIF orientation: a phone photo and its upright copy hash alike; `orientation=False` and the
ImageHash-compatible module hash the stored pixels, as ImageHash does.

The fixtures are Meta's `exif-rotn` photos (orientation tags 1, 3, 6 and 8), each compared with an
upright copy of itself written without any tag (the four are different framings of one desk, so
they are not compared with each other).
"""

from __future__ import annotations

from pathlib import Path

import imagehash
import numpy as np
import pytest
from PIL import Image, ImageOps

import lookalike
import lookalike.compat.imagehash as compat
from conftest import FIXTURES
from lookalike.algorithms import parse_spec

EXIF_DIR = FIXTURES / "pdq" / "reg-test-input" / "exif-rotn"
TAGS = (1, 3, 6, 8)
ROTATING_TAGS = (3, 6, 8)
# colorhash is left out: a colour histogram does not change when the image turns.
ALGORITHMS = ["pdq", "ahash", "dhash", "dhash_vertical", "phash", "phash_simple", "whash"]
COMPAT_FUNCTIONS = ["average_hash", "phash", "phash_simple", "dhash", "dhash_vertical", "whash", "colorhash"]


def tagged(tag: int) -> Path:
    return EXIF_DIR / f"exif-rotn-{tag}.jpg"


def untagged_copy(tmp_path: Path, tag: int, upright: bool) -> Path:
    """A lossless PNG of the photo's pixels (upright, or as stored) carrying no orientation tag."""
    with Image.open(tagged(tag)) as image:
        pixels = ImageOps.exif_transpose(image) if upright else image
        target = tmp_path / f"{'upright' if upright else 'stored'}-{tag}.png"
        Image.fromarray(np.asarray(pixels.convert("RGB"))).save(target)
    return target


def test_fixtures_carry_the_orientation_tags_they_are_named_after() -> None:
    for tag in TAGS:
        with Image.open(tagged(tag)) as image:
            assert image.getexif().get(0x0112) == tag


@pytest.mark.parametrize("tag", TAGS)
def test_tagged_photo_hashes_exactly_as_its_upright_copy_in_exact_mode(tmp_path: Path, tag: int) -> None:
    upright = untagged_copy(tmp_path, tag, upright=True)
    ours = lookalike.hash_file(tagged(tag), ALGORITHMS, mode="exact")
    copy = lookalike.hash_file(upright, ALGORITHMS, mode="exact")
    assert {name: str(value) for name, value in ours.items()} == {
        name: str(value) for name, value in copy.items()
    }
    assert (ours.width, ours.height) == (copy.width, copy.height)


@pytest.mark.parametrize("tag", TAGS)
def test_tagged_photo_hashes_alike_its_upright_copy_in_fast_mode(tmp_path: Path, tag: int) -> None:
    # Fast mode decodes the JPEG at reduced scale and box-reduces the PNG: a bit or two apart.
    upright = untagged_copy(tmp_path, tag, upright=True)
    ours = lookalike.hash_file(tagged(tag), ALGORITHMS)
    copy = lookalike.hash_file(upright, ALGORITHMS)
    for name in ALGORITHMS:
        assert ours[name] - copy[name] <= 2, name


@pytest.mark.parametrize("tag", ROTATING_TAGS)
def test_orientation_false_hashes_the_stored_pixels(tmp_path: Path, tag: int) -> None:
    stored = lookalike.hash_file(untagged_copy(tmp_path, tag, upright=False), ALGORITHMS, mode="exact")
    upright = lookalike.hash_file(untagged_copy(tmp_path, tag, upright=True), ALGORITHMS, mode="exact")
    ignoring = lookalike.hash_file(tagged(tag), ALGORITHMS, mode="exact", orientation=False)
    for name in ALGORITHMS:
        assert ignoring[name] == stored[name], name
        # ... which, turned, are another picture to every hash: farther than its match threshold.
        assert ignoring[name] - upright[name] > parse_spec(name).max_distance, name


@pytest.mark.parametrize("tag", TAGS)
def test_compat_imagehash_ignores_orientation_bit_exact_with_imagehash(tag: int) -> None:
    with Image.open(tagged(tag)) as image:
        image.load()
        for function in COMPAT_FUNCTIONS:
            assert str(getattr(compat, function)(image)) == str(getattr(imagehash, function)(image)), function
        stored = lookalike.hash_file(tagged(tag), ["ahash", "phash"], mode="exact", orientation=False)
        assert str(compat.average_hash(image)) == str(stored["ahash"])
        assert str(compat.phash(image)) == str(stored["phash"])
        upright = lookalike.hash_file(tagged(tag), ["ahash"], mode="exact")
        assert (str(compat.average_hash(image)) == str(upright["ahash"])) == (tag == 1)
