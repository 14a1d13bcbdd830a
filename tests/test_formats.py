"""Every supported format decodes and hashes: JPEG, PNG, WebP, GIF (first frame), BMP, TIFF, HEIC, AVIF."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from PIL import Image, ImageOps

import lookalike
from conftest import COMMITTED_PHOTOS

HASHES = ["ahash", "dhash", "phash", "whash", "colorhash"]


def photo() -> Image.Image:
    with Image.open(COMMITTED_PHOTOS[4]) as image:
        return image.convert("RGB")


def _has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _register_heif() -> None:
    if not _has("pillow_heif"):
        pytest.skip(
            "HEIC needs the optional extra: pip install 'lookalike[heif]' (pillow-heif is not installed)"
        )
    from pillow_heif import register_heif_opener

    register_heif_opener()


def _register_avif() -> None:
    from PIL import features

    if not (features.check("avif") or _has("pillow_avif")):
        pytest.skip(
            "AVIF needs Pillow >= 11.3 built with libavif or the optional extra "
            "'lookalike[heif]' (pillow-avif-plugin): neither is available"
        )
    if _has("pillow_avif"):
        import pillow_avif  # noqa: F401


FORMATS = {
    "JPEG": (".jpg", {"quality": 90}),
    "PNG": (".png", {}),
    "WEBP": (".webp", {"quality": 90}),
    "BMP": (".bmp", {}),
    "TIFF": (".tif", {"compression": "tiff_lzw"}),
    "HEIF": (".heic", {"quality": 90}),
    "AVIF": (".avif", {"quality": 90}),
}


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_format_hashes_in_both_modes_and_exact_matches_the_decoded_pixels(fmt: str, tmp_path: Path) -> None:
    if fmt == "HEIF":
        _register_heif()
    if fmt == "AVIF":
        _register_avif()
    suffix, save_options = FORMATS[fmt]
    path = tmp_path / f"photo{suffix}"
    photo().save(path, fmt, **save_options)
    exact = lookalike.hash_file(path, HASHES, mode="exact")
    fast = lookalike.hash_file(path, HASHES, mode="fast")
    assert exact.format == fmt and (exact.width, exact.height) == photo().size
    with Image.open(path) as image:
        decoded = ImageOps.exif_transpose(image.convert("RGB"))
    assert dict(exact) == dict(lookalike.hash_image(decoded, HASHES, mode="exact"))
    for name in HASHES:
        assert exact[name] - fast[name] <= 6, name  # type: ignore[operator]


def test_gif_is_hashed_from_its_first_frame(tmp_path: Path) -> None:
    first = photo()
    second = ImageOps.invert(first)
    path = tmp_path / "animated.gif"
    first.save(path, save_all=True, append_images=[second], duration=100, loop=0)
    result = lookalike.hash_file(path, HASHES, mode="exact")
    with Image.open(path) as gif:
        assert gif.n_frames == 2
        gif.seek(0)
        frame0 = gif.convert("RGB")
        gif.seek(1)
        frame1 = gif.convert("RGB")
    assert dict(result) == dict(lookalike.hash_image(frame0, HASHES, mode="exact"))
    assert result["ahash"] != lookalike.hash_image(frame1, ["ahash"], mode="exact")["ahash"]
