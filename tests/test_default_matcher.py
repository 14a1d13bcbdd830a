"""The default matcher preset finds edited copies of photos and rejects different photos."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageOps

from lookalike import hash_image
from lookalike.algorithms.equalized import equalize
from lookalike.benchmarks.transforms import get_transform
from lookalike.matcher import DEFAULT_PRESET, Matcher

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "camera", "moon")
EDITS = (
    "jpeg_20",
    "resize_25",
    "crop_left_10",
    "crop_centre_10",
    "pad_black_25",
    "pad_blur_10",
    "rotate_90",
    "flip_horizontal",
    "grayscale",
    "noise",
    "text",
    "frame",
)


def _photo(name: str, side: int = 384) -> Image.Image:
    import skimage.data

    image = Image.fromarray(getattr(skimage.data, name)()).convert("RGB")
    image.thumbnail((side, side))
    return image


def _match(matcher: Matcher, a: dict[str, object], b: dict[str, object]) -> bool:
    """As the benchmark and a symmetric duplicate search judge a pair: either image as the query
    (crop variants travel with the query, so the larger image finds the crop cut from it)."""
    return matcher.matches(a, b, dihedral=True) or matcher.matches(b, a, dihedral=True)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def matcher() -> Matcher:
    return Matcher.preset(DEFAULT_PRESET)


@pytest.fixture(scope="module")
def hashed(matcher: Matcher) -> dict[tuple[str, str], dict[str, object]]:
    """Hashes of every photo (edit "") and every edited copy, as the preset needs them."""
    out = {}
    for name in PHOTOS:
        photo = _photo(name)
        out[(name, "")] = dict(hash_image(photo, list(matcher.algorithms), dihedral=True))
        for edit in EDITS:
            copy = get_transform(edit)(photo, 1)
            out[(name, edit)] = dict(hash_image(copy, list(matcher.algorithms), dihedral=True))
    return out


@pytest.mark.slow
@pytest.mark.parametrize("edit", EDITS)
def test_default_preset_finds_edited_copies(edit, matcher, hashed) -> None:
    missed = [name for name in PHOTOS if not _match(matcher, hashed[(name, edit)], hashed[(name, "")])]
    assert len(missed) <= 1, f"{edit}: missed {missed}"


@pytest.mark.slow
def test_default_preset_rejects_different_photos_and_their_copies(matcher, hashed) -> None:
    false_matches = [
        (a, b) for a in hashed for b in hashed if a[0] < b[0] and _match(matcher, hashed[a], hashed[b])
    ]
    assert false_matches == []


@pytest.mark.slow
def test_default_preset_searches_an_index(matcher, hashed, tmp_path) -> None:
    """The preset is evaluated by the index: querying with a photo finds its stored edited copies
    (crops through the query's crop variants) and nothing of the other photos."""
    from lookalike.hash import Hash
    from lookalike.index import open_index

    with open_index(f"sqlite:///{tmp_path / 'photos.db'}") as index:
        stored = [
            (f"{name}/{edit or 'original'}", {k: v for k, v in hashes.items() if isinstance(v, Hash)})
            for (name, edit), hashes in hashed.items()
        ]
        index.add(stored)
        for name in PHOTOS[:3]:
            found = {v.key.split("/")[0] for v in index.match(hashed[(name, "")], matcher, dihedral=True)}
            assert found == {name}
            keys = {v.key for v in index.match(hashed[(name, "")], matcher, dihedral=True)}
            assert {f"{name}/crop_left_10", f"{name}/rotate_90", f"{name}/pad_black_25"} <= keys


def _darkened(name: str, factor: float, side: int) -> Image.Image:
    """A photo scaled to `side` and darkened to `factor` of its levels: a dim, low-contrast
    picture like an astrophoto, where plain pHash's quality gate does not trust it."""
    import numpy as np

    return Image.fromarray((np.asarray(_photo(name, side)) * factor).astype(np.uint8))


@pytest.mark.parametrize(("name", "side"), [("cell", 384), ("hubble_deep_field", 512)])
def test_noisy_copy_of_a_dim_photo_is_found_by_corroborated_plain_phash(name: str, side: int) -> None:
    """Noise reshuffles the equalised levels of a dim picture, so the equalised hashes drift past
    their limit while plain pHash stays close; plain pHash of a low-contrast thumbnail is trusted
    only when the equalised hash still agrees far beyond chance. That clause finds this copy."""
    matcher = Matcher.preset(DEFAULT_PRESET)
    dim = _darkened(name, 0.15, side)
    algorithms = list(matcher.algorithms)
    original = dict(hash_image(dim, algorithms, dihedral=True))
    noisy = dict(hash_image(get_transform("noise")(dim, 1), algorithms, dihedral=True))
    assert original["phash:16"].quality < 100  # type: ignore[union-attr, operator]
    assert _match(matcher, noisy, original)
    corroborated = matcher.groups[-1]
    assert [condition.algorithms for condition in corroborated] == [("phash:16",), ("phash_eq",)]
    without_corroboration = Matcher(matcher.groups[:-1])
    assert not _match(without_corroboration, noisy, original)


def test_dim_pictures_do_not_match_each_other() -> None:
    """Darkened, and noisy darkened, versions of different photos stay apart under the preset."""
    matcher = Matcher.preset(DEFAULT_PRESET)
    hashed = {}
    for name in ("cell", "hubble_deep_field", "moon", "camera", "coffee", "text"):
        dim = _darkened(name, 0.15, 384)
        for edit, image in (("", dim), ("noise", get_transform("noise")(dim, 1))):
            hashed[(name, edit)] = dict(hash_image(image, list(matcher.algorithms), dihedral=True))
    false_matches = [
        (a, b) for a in hashed for b in hashed if a[0] < b[0] and _match(matcher, hashed[a], hashed[b])
    ]
    assert false_matches == []


@pytest.mark.slow
@pytest.mark.parametrize("degrees", [2.0, 5.0, -6.0, 9.0])
def test_default_preset_finds_tilted_copies(degrees: float, matcher: Matcher, hashed) -> None:
    """A photo tilted by a few degrees (black corners, as a crooked scan) is found: the query
    carries rotated variants of itself. Angles off the variants' own grid (4 and 8 degrees)."""
    from lookalike.benchmarks.transforms import tilt

    missed = []
    for name in PHOTOS:
        copy = tilt(_photo(name), 0, degrees)
        hashes = dict(hash_image(copy, list(matcher.algorithms), dihedral=True))
        if not _match(matcher, hashes, hashed[(name, "")]):
            missed.append(name)
    assert len(missed) <= 1, f"tilt {degrees}: missed {missed}"


@pytest.mark.slow
@pytest.mark.parametrize("cut", [(0.1, 0, 0, 0), (0, 0.12, 0, 0), (0.04, 0.04, 0.04, 0.04)])
def test_default_preset_finds_mirrored_copies_cut_down(cut, matcher: Matcher, hashed) -> None:
    """Flip and crop, a common way to dodge a hash list: found through the query's mirrored crop
    variants (left, top, right, bottom fractions, off the crop grid's own 7 and 14%)."""
    left, top, right, bottom = cut
    missed = []
    for name in PHOTOS:
        mirrored = ImageOps.mirror(_photo(name))
        width, height = mirrored.size
        box = (round(left * width), round(top * height), width - round(right * width))
        copy = mirrored.crop((*box, height - round(bottom * height)))
        hashes = dict(hash_image(copy, list(matcher.algorithms), dihedral=True))
        if not _match(matcher, hashes, hashed[(name, "")]):
            missed.append(name)
    assert len(missed) <= 1, f"mirrored, cut {cut}: missed {missed}"


def _degenerate_thumbnails() -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    two_levels = rng.integers(0, 2, (64, 64)) * 200
    almost_flat = np.full((64, 64), 90)
    almost_flat[rng.random((64, 64)) < 0.02] = 91
    return [np.full((64, 64), 7), two_levels, almost_flat, rng.integers(0, 256, (64, 64))]


def test_equalize_is_pillows_equalize_bit_for_bit(photos) -> None:
    thumbnails = [np.asarray(Image.open(p).convert("L").resize((64, 64))) for p in photos]
    thumbnails += [np.asarray(t, dtype=np.uint8) for t in _degenerate_thumbnails()]
    for pixels in thumbnails:
        expected = np.asarray(ImageOps.equalize(Image.fromarray(pixels)))
        assert np.array_equal(equalize(pixels), expected)
