"""Quality scores and gates: flat, near-flat and degenerate hashes are flagged; real photos are not."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pdqhash
import pytest
from PIL import Image

import lookalike
from conftest import COMMITTED_PHOTOS, FIXTURES, skimage_images
from lookalike import Hash
from lookalike.algorithms import algorithm_names, get_algorithm, parse_spec
from lookalike.algorithms.contrast import contrast_quality, thumbnail_quality
from lookalike.hash import MultiHash
from lookalike.index.flags import MIN_QUALITY
from lookalike.quality import DEFAULT_MIN_QUALITY, flag_reason, flagged_names, is_flagged, min_quality

THUMBNAIL_HASHES = ["ahash", "dhash", "dhash_vertical", "phash", "phash_simple", "whash", "whash_db4"]
GATED = ["pdq", *THUMBNAIL_HASHES]
MODES = ("fast", "exact")


def skimage(name: str) -> Path:
    return next(p for p in skimage_images() if p.name == name)


def flat(value: int) -> Image.Image:
    return Image.new("RGB", (640, 480), (value, value, value))


def near_flat_noise() -> Image.Image:
    rng = np.random.default_rng(7)
    noise = np.clip(128 + rng.normal(0, 1.0, size=(480, 640, 3)), 0, 255)
    return Image.fromarray(noise.astype(np.uint8))


def near_flat_gradient() -> Image.Image:
    return Image.fromarray(np.tile(np.linspace(120, 126, 640), (480, 1)).astype(np.uint8))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "image",
    [flat(128), flat(0), near_flat_noise(), near_flat_gradient()],
    ids=["flat-gray", "black", "near-flat-noise", "near-flat-gradient"],
)
def test_flat_and_near_flat_images_are_flagged_for_every_gated_hash(image: Image.Image, mode: str) -> None:
    hashes = lookalike.hash_image(image, GATED, mode=mode)
    for name in GATED:
        value = hashes[name]
        assert isinstance(value, Hash) and value.quality is not None
        assert value.quality < 50 and is_flagged(value, name), (name, value.quality)
    assert flagged_names(hashes) == frozenset(GATED)


@pytest.mark.parametrize("mode", MODES)
def test_flat_image_scores_zero_for_every_gated_hash(mode: str) -> None:
    hashes = lookalike.hash_image(flat(128), GATED, mode=mode)
    assert {name: hashes[name].quality for name in GATED} == dict.fromkeys(GATED, 0)


def test_pdq_of_a_flat_image_is_float_noise_as_in_the_reference() -> None:
    # Every DCT coefficient is rounding noise around 0, so the bits mean nothing: hence the gate.
    rgb = np.full((480, 640, 3), 128, dtype=np.uint8)
    bits, quality = pdqhash.compute(rgb)
    ours = lookalike.hash_image(Image.fromarray(rgb), ["pdq"], mode="exact")["pdq"]
    assert ours == Hash.from_bits(bits) and ours.quality == quality == 0
    assert 0 < ours.popcount() < 256 and is_flagged(ours, "pdq")


@pytest.mark.parametrize("path", COMMITTED_PHOTOS, ids=lambda p: p.name)
def test_real_photos_are_not_flagged(path: Path) -> None:
    hashes = lookalike.hash_file(path, [*GATED, "colorhash", "crop_resistant"])
    assert {name: flag_reason(value, name) for name, value in hashes.items() if is_flagged(value, name)} == {}
    assert all(hashes[name].quality >= 80 for name in GATED)


@pytest.mark.parametrize("name", ["q0003.jpg", "q0004.jpg"])
def test_dark_real_photos_have_low_pdq_quality_and_are_flagged(name: str) -> None:
    path = FIXTURES / "pdq" / "reg-test-input" / "labelme-subset" / name
    pdq = lookalike.hash_file(path, ["pdq"])["pdq"]
    assert isinstance(pdq, Hash) and pdq.quality is not None and pdq.quality < 10
    assert flag_reason(pdq, "pdq") == f"quality {pdq.quality} < 50"


def test_quality_judges_each_hash_at_its_own_resolution() -> None:
    # A uniform brick wall is flat at aHash's 8x8 but has texture at pHash's 32x32.
    hashes = lookalike.hash_file(skimage("brick.png"), ["ahash", "phash", "pdq"])
    assert is_flagged(hashes["ahash"], "ahash")
    assert not is_flagged(hashes["phash"], "phash")
    assert not is_flagged(hashes["pdq"], "pdq")


def test_degenerate_hashes_are_flagged_whatever_their_quality() -> None:
    # A vertical ramp: lots of contrast, but no left-right differences (dHash all 0) and every
    # pixel darker than the one below (vertical dHash all 1).
    ramp = Image.fromarray(np.tile(np.linspace(0, 255, 480)[:, None], (1, 640)).astype(np.uint8))
    hashes = lookalike.hash_image(ramp, ["dhash", "dhash_vertical", "ahash"])
    assert hashes["dhash"].quality == 100 and flag_reason(hashes["dhash"], "dhash") == "all bits 0"
    assert flag_reason(hashes["dhash_vertical"], "dhash_vertical") == "all bits 1"
    assert not is_flagged(hashes["ahash"], "ahash")


def test_crop_resistant_hash_of_a_flat_image_is_flagged() -> None:
    flat_hash = lookalike.hash_image(flat(90), ["crop_resistant"])["crop_resistant"]
    photo_hash = lookalike.hash_file(COMMITTED_PHOTOS[0], ["crop_resistant"])["crop_resistant"]
    assert isinstance(flat_hash, MultiHash)
    assert is_flagged(flat_hash, "crop_resistant") and not is_flagged(photo_hash, "crop_resistant")
    assert flag_reason(MultiHash([]), "crop_resistant") == "no segments"


def test_gates_accept_names_with_sizes_specs_and_algorithms() -> None:
    weak = Hash(0b1011, 64, quality=30)
    for algorithm in ("phash:16", parse_spec("phash:16"), get_algorithm("phash")):
        assert is_flagged(weak, algorithm)
    assert not is_flagged(weak.with_quality(50), "phash:16")
    assert not is_flagged(Hash(0b1011, 64), "colorhash")  # no quality, not degenerate


def test_every_gated_algorithm_declares_its_minimum_quality() -> None:
    assert {name: get_algorithm(name).min_quality for name in GATED} == dict.fromkeys(GATED, 50)
    assert all(get_algorithm(name).has_quality for name in GATED)


def test_thumbnail_quality_is_contrast_in_grey_levels() -> None:
    assert thumbnail_quality(np.full((8, 8), 77, dtype=np.uint8)) == 0
    two_levels = np.array([[100, 104]] * 4, dtype=np.uint8)  # standard deviation 2 grey levels
    assert thumbnail_quality(two_levels) == 25
    assert contrast_quality(4.0) == 50 and contrast_quality(8.0) == 100 and contrast_quality(60.0) == 100


def test_unknown_names_get_the_default_minimum_that_every_gated_algorithm_uses() -> None:
    # The ClickHouse backend flags many rows at once with one threshold (index.flags.MIN_QUALITY).
    assert min_quality("my_own_hash") == min_quality(None) == DEFAULT_MIN_QUALITY == MIN_QUALITY
    for name in algorithm_names():
        algorithm = get_algorithm(name)
        assert algorithm.min_quality == (DEFAULT_MIN_QUALITY if algorithm.has_quality else 0), name
    assert is_flagged(Hash(0b1011, 64, quality=30), "my_own_hash")
