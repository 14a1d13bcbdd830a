"""Fuzzing the decode + hash path with mutated JPEG, PNG, WebP, GIF and TIFF bytes.

Nothing may escape but `lookalike.errors` exceptions, and no input may take more than 2 s.
`make fuzz` runs the same properties for much longer (FUZZ_EXAMPLES).
"""

from __future__ import annotations

import io
import os
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

import lookalike
from lookalike.errors import ImageError

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "60"))
ALGORITHMS = ["ahash", "dhash", "phash", "whash", "colorhash", "crop_resistant"]


def _seed(fmt: str) -> bytes:
    image = Image.new("RGB", (48, 32))
    for x in range(48):
        for y in range(32):
            image.putpixel((x, y), (x * 5, y * 7, (x * y) % 256))
    buffer = io.BytesIO()
    options: dict[str, object] = {"quality": 80} if fmt in ("JPEG", "WEBP") else {}
    (image.quantize(16) if fmt == "GIF" else image).save(buffer, fmt, **options)
    return buffer.getvalue()


SEEDS = {fmt: _seed(fmt) for fmt in ("JPEG", "PNG", "WEBP", "GIF", "TIFF")}


@st.composite
def mutated(draw: st.DrawFn, fmt: str) -> bytes:
    data = bytearray(SEEDS[fmt])
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
            result = lookalike.hash_image(data, ALGORITHMS, mode=mode)  # type: ignore[arg-type]
            assert set(result) == set(ALGORITHMS)
        except ImageError as error:
            assert error.reason
        assert time.perf_counter() - started < 2.0

    check()
