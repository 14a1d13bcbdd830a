"""Fuzzing the decode + hash path with mutated JPEG, PNG, WebP, GIF and TIFF bytes, and with the
modes the security audit used against the service (issue 16): 16-bit and 32-bit integer and float
images, palettes, animated GIF and WebP, each also with mutated image sizes (headers that promise
far more pixels than the bytes hold).

Nothing may escape but `lookalike.errors` exceptions, and no input may take more than 2 s.
`make fuzz` runs the same properties for much longer (FUZZ_EXAMPLES).
"""

from __future__ import annotations

import io
import os
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

import lookalike
from lookalike.decode import DecodeLimits
from lookalike.errors import ImageError

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "60"))
ALGORITHMS = ["ahash", "dhash", "phash", "whash", "colorhash", "crop_resistant"]
LIMITS = DecodeLimits(max_pixels=4_000_000, max_decoded_bytes=16_000_000)  # the service's, scaled down


def _picture() -> Image.Image:
    image = Image.new("RGB", (48, 32))
    for x in range(48):
        for y in range(32):
            image.putpixel((x, y), (x * 5, y * 7, (x * y) % 256))
    return image


def _encoded(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def _seeds() -> dict[str, bytes]:
    picture = _picture()
    gray = np.asarray(picture.convert("L"))
    frames = [picture.rotate(angle) for angle in (0, 15, 30)]
    return {
        "JPEG": _encoded(picture, "JPEG", quality=80),
        "PNG": _encoded(picture, "PNG"),
        "WEBP": _encoded(picture, "WEBP", quality=80),
        "GIF": _encoded(picture.quantize(16), "GIF"),
        "TIFF": _encoded(picture, "TIFF"),
        "PNG 16-bit": _encoded(Image.fromarray(gray.astype(np.uint16) * 257), "PNG"),
        "TIFF 32-bit": _encoded(Image.fromarray(gray.astype(np.int32) * 70_000), "TIFF"),
        "TIFF float": _encoded(Image.fromarray(gray.astype(np.float32) / 255), "TIFF"),
        "PNG palette": _encoded(picture.quantize(64), "PNG", transparency=0),
        "GIF animated": _encoded(
            frames[0].quantize(32),
            "GIF",
            save_all=True,
            append_images=[frame.quantize(32) for frame in frames[1:]],
            duration=100,
            loop=0,
        ),
        "WEBP animated": _encoded(frames[0], "WEBP", save_all=True, append_images=frames[1:], duration=100),
    }


SEEDS = _seeds()
# Where each format keeps its width and height (byte offsets of the little or big-endian fields):
# mutating them makes the header promise other sizes than the data holds.
SIZE_FIELDS = {"PNG": (16, 20), "GIF": (6, 8)}


@st.composite
def mutated(draw: st.DrawFn, fmt: str) -> bytes:
    data = bytearray(SEEDS[fmt])
    field = SIZE_FIELDS.get(fmt.split()[0])
    if field is not None and draw(st.booleans()):  # a size of up to 65535 on a side
        for offset in field:
            data[offset : offset + 2] = draw(st.binary(min_size=2, max_size=2))
    for _ in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(["flip", "set", "cut", "insert", "dup"]))
        position = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == "flip" and data:
            data[position] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set" and data:
            data[position] = draw(st.sampled_from([0, 0xFF, 0x7F, 0x80, draw(st.integers(0, 255))]))
        elif kind == "cut":
            del data[position : position + draw(st.integers(1, 64))]
        elif kind == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=32))
        elif kind == "dup":
            data[position:position] = data[max(0, position - 16) : position]
    return bytes(data)


@pytest.mark.parametrize("fmt", sorted(SEEDS))
def test_mutated_images_raise_only_lookalike_errors_quickly(fmt: str) -> None:
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(data=mutated(fmt), mode=st.sampled_from(["fast", "exact"]))
    def check(data: bytes, mode: str) -> None:
        started = time.perf_counter()
        try:
            result = lookalike.hash_image(data, ALGORITHMS, mode=mode, limits=LIMITS)  # type: ignore[arg-type]
            assert set(result) == set(ALGORITHMS)
        except ImageError as error:
            assert error.reason
        assert time.perf_counter() - started < 2.0

    check()
