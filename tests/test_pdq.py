"""PDQ conforms to Meta's reference: expected hashes, `pdqhash` bit for bit, quality, fast mode.

The oracle is the `pdqhash` package (Meta's C++ reference). Fed the identical RGB array, our hash
must equal it bit for bit; the only bits allowed to differ are ties, where the reference's own DCT
coefficient equals its median within float32 rounding (the bit then depends on the last ulp of
float arithmetic). In practice our coefficients equal the reference's exactly, so there are none.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pdqhash
import pytest
from PIL import Image, ImageOps

import lookalike
from conftest import COMMITTED_PHOTOS, FIXTURES, skimage_images
from lookalike import Hash
from lookalike.algorithms import get_algorithm, parse_spec
from lookalike.algorithms.jarosz import jarosz_block_weights, jarosz_downsample, jarosz_downsample_blocks
from lookalike.algorithms.pdq import pdq_coefficients, pdq_hash, pdq_luma
from lookalike.decode import decode
from lookalike.errors import UnknownAlgorithmError

PDQ_FIXTURES = FIXTURES / "pdq"
# Numbered in Meta's dihedral order: original, rotate-90, ..., flip-minus-1.
DIHEDRAL_FILES = sorted((PDQ_FIXTURES / "reg-test-input" / "dih").glob("bridge-*.jpg"))
MODES = ("exact", "fast")
EXPECTED_TOLERANCE = 16  # Meta's reference test against expected-pdq.tsv
REFERENCE_TOLERANCE = 10  # Meta's rule for implementations, for quality >= 80


def expected_hashes() -> list[tuple[Path, Hash]]:
    rows = []
    for line in (PDQ_FIXTURES / "expected-pdq.tsv").read_text().splitlines():
        if line.strip():
            name, digits = line.split("\t")
            rows.append((PDQ_FIXTURES / name, Hash.from_hex(digits.strip())))
    return rows


EXPECTED = expected_hashes()
PDQ_IMAGES = sorted(p for p in PDQ_FIXTURES.rglob("*.jpg"))
ALL_IMAGES = PDQ_IMAGES + COMMITTED_PHOTOS + skimage_images()


def reference_rgb(path: Path, orientation: bool = True) -> npt.NDArray[np.uint8]:
    """The pixels `pdqhash` is fed: Pillow's decode, upright, in RGB."""
    with Image.open(path) as image:
        upright = ImageOps.exif_transpose(image) if orientation else image
        return np.ascontiguousarray(np.asarray(upright.convert("RGB")))


def reference_hash(rgb: npt.NDArray[np.uint8]) -> Hash:
    bits, quality = pdqhash.compute(rgb)
    return Hash.from_bits(bits, int(quality))


def pdq_of(path: Path, mode: str = "exact", **options: bool) -> Hash:
    value = lookalike.hash_file(path, ["pdq"], mode=mode, **options)["pdq"]
    assert isinstance(value, Hash)
    return value


def non_tie_differences(ours: Hash, rgb: npt.NDArray[np.uint8]) -> list[int]:
    """Bit positions (hex order) where ours differs from `pdqhash` and the reference's coefficient is
    not a tie, i.e. not within float32 rounding of the reference's median."""
    reference_bits, _ = pdqhash.compute(rgb)
    reference_floats, _ = pdqhash.compute_float(rgb)  # same order as the bits: hex order
    floats = np.asarray(reference_floats, dtype=np.float32)
    median = np.sort(floats)[(floats.size - 1) // 2]
    tie = np.abs(floats - median) <= 4 * np.finfo(np.float32).eps * max(1.0, abs(float(median)))
    differ = ours.bits != np.asarray(reference_bits, dtype=bool)
    return [int(i) for i in np.flatnonzero(differ & ~tie)]


# ----- Meta's expected hashes ----------------------------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("path", "expected"), EXPECTED, ids=[p.name for p, _ in EXPECTED])
def test_pdq_is_within_16_bits_of_metas_expected_hash(path: Path, expected: Hash, mode: str) -> None:
    assert pdq_of(path, mode) - expected <= EXPECTED_TOLERANCE


def test_every_committed_conformance_image_has_an_expected_hash() -> None:
    assert sorted(path for path, _ in EXPECTED) == sorted(p for p in PDQ_IMAGES if "exif-rotn" not in p.parts)


# ----- bit-exact with pdqhash on identical arrays -------------------------------------------------
@pytest.mark.parametrize("path", ALL_IMAGES, ids=lambda p: p.name)
def test_pdq_is_bit_exact_with_pdqhash_on_identical_rgb_arrays(path: Path) -> None:
    rgb = reference_rgb(path)
    ours = pdq_hash(rgb)
    assert non_tie_differences(ours, rgb) == []
    assert ours.quality == reference_hash(rgb).quality


@pytest.mark.parametrize("path", PDQ_IMAGES[::3] + COMMITTED_PHOTOS[::5], ids=lambda p: p.name)
def test_pdq_dct_coefficients_equal_pdqhash_floats_exactly(path: Path) -> None:
    # The stronger statement behind the bit-exactness: not one float32 differs, so no tie is
    # ever resolved differently from the reference.
    rgb = reference_rgb(path)
    coefficients, _ = pdq_coefficients(pdq_luma(rgb))
    reference_floats, _ = pdqhash.compute_float(rgb)
    assert np.array_equal(coefficients.ravel()[::-1], np.asarray(reference_floats, dtype=np.float32))


def test_tie_detection_accepts_only_bits_at_the_median() -> None:
    rgb = reference_rgb(DIHEDRAL_FILES[0])
    ours = pdq_hash(rgb)
    flipped_far_from_median = Hash(int(ours) ^ (1 << 255), 256)  # bit 0 in hex order
    assert non_tie_differences(flipped_far_from_median, rgb) == [0]


def test_pdq_of_a_64x64_image_skips_the_blur_as_the_reference_does() -> None:
    rgb = reference_rgb(COMMITTED_PHOTOS[3])[:64, :64].copy()
    assert pdq_hash(rgb) == reference_hash(rgb)
    assert pdq_hash(rgb).quality == reference_hash(rgb).quality


def test_pdq_of_an_image_under_5_pixels_is_all_zeros_with_quality_0() -> None:
    rgb = reference_rgb(COMMITTED_PHOTOS[0])[:4, :300].copy()
    ours, reference = pdq_hash(rgb), reference_hash(rgb)
    assert ours == reference and int(ours) == 0
    assert ours.quality == reference.quality == 0


def test_pdq_of_a_grayscale_image_equals_pdq_of_its_rgb_copy() -> None:
    gray = next(p for p in skimage_images() if p.name == "camera.png")
    with Image.open(gray) as image:
        assert image.mode == "L"
        as_rgb = image.convert("RGB")
        for mode in MODES:
            from_gray = lookalike.hash_image(image, ["pdq"], mode=mode)["pdq"]
            from_rgb = lookalike.hash_image(as_rgb, ["pdq"], mode=mode)["pdq"]
            assert from_gray == from_rgb


# ----- end to end: our decode + hash vs pdqhash on Pillow's decode --------------------------------
@pytest.mark.slow
def test_exact_mode_end_to_end_equals_pdqhash_on_pillows_decode() -> None:
    mismatches = []
    for path in ALL_IMAGES:
        ours, reference = pdq_of(path), reference_hash(reference_rgb(path))
        if ours != reference or ours.quality != reference.quality:
            mismatches.append(
                f"{path.name}: {ours - reference} bits, quality {ours.quality}/{reference.quality}"
            )
    assert mismatches == []


@pytest.mark.slow
def test_fast_mode_is_within_10_bits_of_pdqhash_for_quality_80() -> None:
    checked, far = 0, []
    for path in ALL_IMAGES:
        reference = reference_hash(reference_rgb(path))
        if (reference.quality or 0) < 80:
            continue
        checked += 1
        distance = pdq_of(path, "fast") - reference
        if distance > REFERENCE_TOLERANCE:
            far.append(f"{path.name}: {distance}")
    assert checked >= 60
    assert far == []


def test_fast_mode_really_hashes_reduced_pixels_for_large_images() -> None:
    # Otherwise the fast-mode tests above would only repeat the exact ones.
    working_side = get_algorithm("pdq").working_side(16)
    decoded = decode(DIHEDRAL_FILES[0], draft_min_side=working_side)
    assert decoded.draft_scale >= 2
    assert decoded.image.size[0] < decoded.width


# ----- fast mode's downsampling from block means ---------------------------------------------------
@pytest.mark.parametrize("factor", [2, 3, 8])
def test_block_downsample_equals_full_downsample_when_blocks_are_constant(factor: int) -> None:
    rng = np.random.default_rng(factor)
    blocks = rng.uniform(0, 255, size=(97, 131)).astype(np.float32)
    full = np.repeat(np.repeat(blocks, factor, axis=0), factor, axis=1)[: 97 * factor - 1, : 131 * factor - 2]
    exact = jarosz_downsample(np.ascontiguousarray(full))
    estimate = jarosz_downsample_blocks(blocks, full.shape, factor)
    np.testing.assert_allclose(estimate, exact, rtol=0, atol=2e-3)


@pytest.mark.parametrize(("full_size", "factor"), [(1004, 2), (3024, 8), (777, 3), (4032, 8)])
def test_block_weights_keep_a_flat_image_flat(full_size: int, factor: int) -> None:
    first, weights = jarosz_block_weights(full_size, factor)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, rtol=1e-12)
    assert (first >= 0).all() and (first + weights.shape[1] <= -(-full_size // factor)).all()


# ----- dihedral variants ---------------------------------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("index", range(8))
def test_each_dihedral_variant_matches_hashing_the_rotated_file(index: int, mode: str) -> None:
    original = lookalike.hash_file(DIHEDRAL_FILES[0], ["pdq"], mode=mode, dihedral=True)["pdq"]
    assert isinstance(original, Hash) and original.variants is not None
    rotated = pdq_of(DIHEDRAL_FILES[index], mode)
    distances = [variant - rotated for variant in original.variants]
    assert distances[index] <= EXPECTED_TOLERANCE
    assert distances[index] == min(distances)  # and it is the variant of that orientation


def test_dihedral_variants_equal_pdqhash_compute_dihedral() -> None:
    for path in [DIHEDRAL_FILES[0], *COMMITTED_PHOTOS[::7]]:
        rgb = reference_rgb(path)
        reference_variants, _ = pdqhash.compute_dihedral(rgb)
        ours = lookalike.hash_image(Image.fromarray(rgb), ["pdq"], mode="exact", dihedral=True)["pdq"]
        assert isinstance(ours, Hash) and ours.variants is not None
        assert [str(v) for v in ours.variants] == [str(Hash.from_bits(bits)) for bits in reference_variants]
        assert ours.variants[0] == ours


# ----- registry ------------------------------------------------------------------------------------
def test_pdq_is_registered_with_256_bits_quality_and_dihedral_support() -> None:
    spec = parse_spec("pdq")
    assert spec.nbits == 256 and spec.key == "pdq"
    assert spec.algorithm.has_quality and spec.algorithm.dihedral is not None
    assert parse_spec("pdqhash").algorithm is spec.algorithm
    with pytest.raises(UnknownAlgorithmError):
        parse_spec("pdq:8")
