"""`lookalike.compat.imagehash` is a drop-in for ImageHash 4.3.2: same names, behaviour and bits."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import imagehash
import numpy as np
import pytest
from PIL import Image

import lookalike.compat.imagehash as compat
from conftest import all_photos

PHOTOS = all_photos()


def _open(index: int) -> Image.Image:
    image = Image.open(PHOTOS[index])
    image.load()
    return image


CALLS = [
    ("average_hash", {}),
    ("average_hash", {"hash_size": 6, "mean": np.median}),
    ("phash", {"hash_size": 10, "highfreq_factor": 3}),
    ("phash_simple", {"hash_size": 7}),
    ("dhash", {"hash_size": 9}),
    ("dhash_vertical", {"hash_size": 4}),
    ("whash", {"hash_size": 8, "image_scale": 64}),
    ("whash", {"hash_size": 4, "remove_max_haar_ll": False}),
    ("whash", {"mode": "db4"}),
    ("colorhash", {"binbits": 4}),
]


@pytest.mark.parametrize("index", range(0, len(PHOTOS), 3))
@pytest.mark.parametrize(("name", "kwargs"), CALLS, ids=[f"{n}{sorted(k)}" for n, k in CALLS])
def test_compat_function_gives_imagehash_bits_and_shape(
    index: int, name: str, kwargs: dict[str, object]
) -> None:
    image = _open(index)
    ours = getattr(compat, name)(image, **kwargs)
    theirs = getattr(imagehash, name)(image, **kwargs)
    assert str(ours) == str(theirs)
    assert ours.hash.shape == theirs.hash.shape
    assert ours.hash.dtype == theirs.hash.dtype


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"hash_func": compat.average_hash},
        {"limit_segments": 2},
        {"segment_threshold": 90, "min_segment_size": 200},
        {"segmentation_image_size": 200},
    ],
)
def test_crop_resistant_hash_matches_imagehash(kwargs: dict[str, object]) -> None:
    image = _open(7)
    theirs_kwargs = dict(kwargs)
    if "hash_func" in kwargs:
        theirs_kwargs["hash_func"] = imagehash.average_hash
    ours = compat.crop_resistant_hash(image, **kwargs)  # type: ignore[arg-type]
    theirs = imagehash.crop_resistant_hash(image, **theirs_kwargs)  # type: ignore[arg-type]
    assert str(ours) == str(theirs)


@pytest.mark.parametrize("index", range(0, len(PHOTOS), 4))
def test_segments_are_imagehash_segments(index: int) -> None:
    from lookalike.algorithms.crop_resistant import segmentation_pixels

    pixels = segmentation_pixels(_open(index).convert("L"))
    ours = compat._find_all_segments(pixels, 128, 500)
    theirs = imagehash._find_all_segments(pixels, 128, 500)

    def describe(segments: list[object]) -> list[tuple[int, int, int, int, int]]:
        out = []
        for segment in segments:
            coords = list(segment)  # type: ignore[call-overload]
            rows = [c[0] for c in coords]
            cols = [c[1] for c in coords]
            out.append((len(coords), min(rows), min(cols), max(rows), max(cols)))
        return out

    assert describe(ours) == describe(theirs)


def test_hex_conversions_round_trip_like_imagehash() -> None:
    image = _open(1)
    for func in (imagehash.average_hash, imagehash.phash, imagehash.dhash):
        text = str(func(image))
        assert str(compat.hex_to_hash(text)) == str(imagehash.hex_to_hash(text))
        assert compat.hex_to_hash(text).hash.shape == imagehash.hex_to_hash(text).hash.shape
    color = str(imagehash.colorhash(image))
    assert np.array_equal(compat.hex_to_flathash(color, 3).hash, imagehash.hex_to_flathash(color, 3).hash)
    multi = str(imagehash.crop_resistant_hash(image))
    assert str(compat.hex_to_multihash(multi)) == str(imagehash.hex_to_multihash(multi))
    old = "0100000000000000"
    assert np.array_equal(compat.old_hex_to_hash(old).hash, imagehash.old_hex_to_hash(old).hash)
    with pytest.raises(ValueError):
        compat.old_hex_to_hash("01")


def test_imagehash_object_semantics() -> None:
    a = compat.hex_to_hash("ffd7918181c9ffff")
    b = compat.hex_to_hash("ffd7918181c9fffe")
    assert a - b == 1
    assert a != b and a == compat.hex_to_hash(str(a))
    assert (a == None) is False and (a != None) is False  # noqa: E711 - ImageHash's own quirk
    with pytest.raises(TypeError):
        _ = a - None  # type: ignore[operator]
    with pytest.raises(TypeError):
        _ = a - compat.hex_to_hash("ff" * 32)
    assert len(a) == 64
    assert {a: 1}[compat.hex_to_hash("ffd7918181c9ffff")] == 1
    assert repr(a) == repr(imagehash.hex_to_hash("ffd7918181c9ffff"))


def test_size_errors_match_imagehash() -> None:
    image = _open(2)
    for name in ("average_hash", "phash", "dhash"):
        with pytest.raises(ValueError):
            getattr(imagehash, name)(image, 1)
        with pytest.raises(ValueError):
            getattr(compat, name)(image, 1)
    with pytest.raises(AssertionError):
        compat.whash(image, hash_size=6)
    with pytest.raises(AssertionError):
        compat.whash(image, image_scale=100)


def test_empty_multihash_behaves_like_later_imagehash() -> None:
    empty = compat.ImageMultiHash([])
    other = compat.hex_to_multihash("aa" * 8)
    assert empty.hash_diff(other) == (0, 0)
    assert other.hash_diff(empty) == (0, 0)
    assert empty - other == 0
    assert not empty.matches(other)


SEED_SCRIPT = textwrap.dedent(
    """
    import sys
    from PIL import Image
    if sys.argv[1] == "imagehash":
        import imagehash
    else:
        import lookalike.compat.imagehash as imagehash

    def hash_to_int(img_hash):
        return int(str(img_hash), 16)

    def main():
        images = [Image.open(p) for p in sys.argv[2:]]
        average_hashes = [hash_to_int(imagehash.average_hash(image)) for image in images]
        color_hashes = [hash_to_int(imagehash.colorhash(image)) for image in images]
        image_hashes = list(zip(images, average_hashes, color_hashes))
        source = image_hashes[0]
        for image in image_hashes:
            hamming_average_hash = bin(source[1] ^ image[1]).count("1")
            hamming_color_hash = bin(source[2] ^ image[2]).count("1")
            hamming_distance = hamming_average_hash + hamming_color_hash
            print("Hamming Distance between", source[0].filename, "and", image[0].filename,
                  "is", hamming_distance)

    main()
    """
)


def test_seed_article_script_prints_identical_lines(tmp_path: Path) -> None:
    script = tmp_path / "seed.py"
    script.write_text(SEED_SCRIPT)
    images = [str(p) for p in PHOTOS[:6]]
    outputs = [
        subprocess.run(
            [sys.executable, str(script), which, *images], capture_output=True, text=True, check=True
        ).stdout
        for which in ("imagehash", "lookalike")
    ]
    assert outputs[0] == outputs[1]
    assert outputs[0].count("Hamming Distance between") == 6
