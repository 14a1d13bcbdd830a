"""Hash sets for exactness tests: random hashes with planted near-duplicates, and real photo hashes
(committed photos, scikit-image's images, and transformed copies of them)."""

from __future__ import annotations

import io
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

import lookalike
from lookalike import Hash
from lookalike.candidates.stored_variants import StoredVariants


def random_hashes(count: int, nbits: int, seed: int, planted: int = 0, max_flips: int = 0) -> list[Hash]:
    """`count` uniform random hashes; the last `planted` are copies of earlier ones with up to
    `max_flips` bits flipped (so small radii have true matches to find)."""
    rng = np.random.default_rng(seed)
    values = [
        int.from_bytes(rng.bytes((nbits + 7) // 8), "big") >> ((8 - nbits % 8) % 8) for _ in range(count)
    ]
    for position in range(count - planted, count):
        source = values[int(rng.integers(0, count - planted))]
        flips = rng.choice(nbits, size=int(rng.integers(0, max_flips + 1)), replace=False)
        for bit in flips.tolist():
            source ^= 1 << bit
        values[position] = source
    return [Hash(value, nbits) for value in values]


def _variants_of(path: Path) -> list[Image.Image]:
    """The image and copies a user would upload: resized, cropped, rotated, re-encoded, brighter."""
    with Image.open(path) as opened:
        image = opened.convert("RGB")
    width, height = image.size
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=40)
    return [
        image,
        image.resize((max(8, width // 2), max(8, height // 2))),
        image.crop((width // 20, height // 20, width - width // 20, height - height // 20)),
        image.rotate(3, expand=False),
        Image.open(io.BytesIO(buffer.getvalue())),
        image.point(lambda v: min(255, int(v * 1.2))),
    ]


@lru_cache(maxsize=4)
def photo_hashes(algorithm: str, paths: tuple[Path, ...]) -> tuple[Hash, ...]:
    """Hashes of every photo and its transformed copies (clustered, as real collections are)."""
    found: list[Hash] = []
    for path in paths:
        for image in _variants_of(path):
            value = lookalike.hash_image(image, [algorithm])[algorithm]
            assert isinstance(value, Hash)
            found.append(value)
    return tuple(found)


def flipped(words: np.ndarray, rng: np.random.Generator, flips: int) -> np.ndarray:
    """Copies of (n, words) uint64 hashes with `flips` random bits of each flipped."""
    near = words.copy()
    for row in range(len(near)):
        for bit in rng.choice(256, size=flips, replace=False).tolist():
            near[row, bit // 64] ^= np.uint64(1 << (63 - bit % 64))
    return near


def variant_answers(stored: StoredVariants | None, query: np.ndarray, *, exact: bool) -> dict:
    """(query row, entry id) -> distance of the stored variants within the default radius."""
    if stored is None:
        return {}
    rows, ids, distances = stored.nearest(query, 56, exact=exact)
    return dict(zip(zip(rows.tolist(), ids.tolist(), strict=True), distances.tolist(), strict=True))
