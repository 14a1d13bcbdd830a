"""Decoding under a memory budget: the ceiling is checked before decoding, and fast mode turns
16-bit, 32-bit, float, palette and 1-bit images into 8-bit working images band by band, with the
same pixels as converting the whole image first (so no hash changes)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

import lookalike
from conftest import COMMITTED_PHOTOS
from lookalike import prepare
from lookalike.decode import DecodeLimits, decode, decoded_bytes
from lookalike.errors import ImageTooLargeError


def _photo() -> Image.Image:
    with Image.open(COMMITTED_PHOTOS[3]) as image:
        return image.convert("RGB")


def _modes() -> dict[str, Image.Image]:
    photo = _photo()
    gray = np.asarray(photo.convert("L"))
    noise = np.random.default_rng(7).random(gray.shape)
    return {
        "I;16": Image.fromarray(gray.astype(np.uint16) * 257),
        "I;16B": Image.fromarray((gray.astype(np.uint16) * 200).astype(">u2")),
        "I": Image.fromarray(gray.astype(np.int32) * 100_000 - 7),
        "F in 0..1 with NaN": Image.fromarray(np.where(noise < 0.01, np.nan, gray / np.float32(300))),
        "F stretched with inf": Image.fromarray(np.where(noise < 0.01, np.inf, gray * np.float32(3.3) - 50)),
        "P": photo.quantize(64),
        "1": photo.convert("1"),
        "LA": photo.convert("LA"),
        "RGBA": photo.convert("RGBA"),
        "CMYK": photo.convert("CMYK"),
    }


def _whole_image_first(image: Image.Image, factor: int) -> Image.Image:
    """The former fast path: the whole image converted (high bit depths through float64), then reduced."""
    if image.mode.startswith("I") or image.mode == "F":
        values = np.asarray(image, dtype=np.float64)
        finite = values[np.isfinite(values)]
        low, high = float(finite.min()), float(finite.max())
        if image.mode == "F" and low >= 0 and high <= 1:
            scaled = values * 255.0
        elif low >= 0 and high <= 255:
            scaled = values
        elif low >= 0 and high <= 65535:
            scaled = values * (255.0 / 65535.0)
        else:
            scaled = (values - low) * (255.0 / (high - low))
        scaled = np.nan_to_num(scaled, nan=0.0, posinf=255.0, neginf=0.0)
        whole = Image.fromarray(np.clip(np.rint(scaled), 0, 255).astype(np.uint8), "L")
    elif image.mode in ("1", "LA"):
        whole = image.convert("L")
    else:
        whole = image.convert("RGB")
    return whole.reduce(factor) if factor > 1 else whole


@pytest.mark.parametrize("name", list(_modes()))
@pytest.mark.parametrize("factor", [1, 2, 3, 7])
def test_band_by_band_conversion_gives_the_pixels_of_whole_image_conversion(
    name: str, factor: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(prepare, "BAND_PIXELS", 2000)  # many bands, a short one last
    image = _modes()[name]
    expected = _whole_image_first(image, factor)
    reduced = prepare.reduce_to_8bit(image, factor)
    assert (reduced.mode, reduced.size) == (expected.mode, expected.size)
    assert np.array_equal(np.asarray(reduced), np.asarray(expected))


def test_the_ceiling_counts_bytes_a_pixel_and_is_checked_before_decoding() -> None:
    sixteen = io.BytesIO()
    Image.new("I;16", (3000, 2000), 4000).save(sixteen, "PNG")
    eight = io.BytesIO()
    Image.new("L", (3000, 2000), 40).save(eight, "PNG")
    limits = DecodeLimits(max_decoded_bytes=10_000_000)
    assert decode(eight.getvalue(), limits=limits).image.size == (3000, 2000)  # 6 MB of pixels
    with pytest.raises(ImageTooLargeError, match=r"I;16 pixels need 12 MB to decode, more than the limit"):
        decode(sixteen.getvalue(), limits=limits)
    with Image.open(sixteen) as header_only:
        assert decoded_bytes(header_only) == 12_000_000  # from the header alone


def test_a_jpeg_counts_at_the_scale_it_is_decoded() -> None:
    jpeg = io.BytesIO()
    _photo().resize((3200, 2400)).save(jpeg, "JPEG")
    limits = DecodeLimits(max_decoded_bytes=8_000_000)  # the full-scale RGB would take 30 MB
    assert lookalike.hash_image(jpeg.getvalue(), ["phash"], limits=limits)["phash"] is not None
    with pytest.raises(ImageTooLargeError):
        lookalike.hash_image(jpeg.getvalue(), ["phash"], mode="exact", limits=limits)


def test_fast_hashes_of_16_bit_and_float_images_are_those_of_the_8_bit_image() -> None:
    gray = _photo().convert("L")
    eight = lookalike.hash_image(gray, ["ahash", "phash", "pdq"])
    sixteen = Image.fromarray(np.asarray(gray, dtype=np.uint16) * 257)
    floating = Image.fromarray(np.asarray(gray, dtype=np.float32) / 255)
    for image in (sixteen, floating):
        assert {k: str(v) for k, v in lookalike.hash_image(image, ["ahash", "phash", "pdq"]).items()} == {
            k: str(v) for k, v in eight.items()
        }
