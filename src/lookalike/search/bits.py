"""Bit arithmetic on uint64 words: popcount, Hamming distances, the masks of a Hamming ball.

Hashes live in memory as `(n, words)` uint64 arrays, big-endian words as `Hash.words()` gives
them. NumPy >= 2.0 has a native `bitwise_count`; older NumPy falls back to a byte lookup table.
Where FAISS is installed (`lookalike[faiss]`), its compiled kernel gives every distance between
two small sets of hashes at once (`compiled_distances`).
"""

from __future__ import annotations

import functools
import itertools
import os
from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

from lookalike.hash import Hash

Words = npt.NDArray[np.uint64]
# (a (na, words), b (nb, words), out (na * nb,) int32): every distance a[i] - b[j] into out[i * nb + j]
DistanceKernel = Callable[[Words, Words, npt.NDArray[np.int32]], None]
NO_COMPILED_VARIABLE = "LOOKALIKE_NO_FAISS"  # set: the NumPy paths only (tests compare both)

_BYTE_POPCOUNT = np.array([bin(value).count("1") for value in range(256)], dtype=np.uint8)
_HAS_BITWISE_COUNT = hasattr(np, "bitwise_count")


def popcount_lut(values: Words) -> npt.NDArray[np.uint8]:
    """Set bits per uint64 via a byte lookup table (the fallback for NumPy < 2.0)."""
    contiguous = np.ascontiguousarray(values, dtype=np.uint64)
    per_byte = _BYTE_POPCOUNT[contiguous.view(np.uint8)]
    counts: npt.NDArray[np.uint8] = per_byte.reshape(*contiguous.shape, 8).sum(axis=-1, dtype=np.uint8)
    return counts


def popcount(values: Words, out: npt.NDArray[np.uint8] | None = None) -> npt.NDArray[np.uint8]:
    """Set bits per uint64 element (any shape); into `out` when given (a buffer reused over
    many calls spares allocating, and faulting in, a large temporary each time)."""
    if _HAS_BITWISE_COUNT:
        counts: npt.NDArray[np.uint8] = (
            np.bitwise_count(values) if out is None else np.bitwise_count(values, out=out)
        )
        return counts
    if out is None:
        return popcount_lut(values)
    out[...] = popcount_lut(values)
    return out


@functools.cache
def compiled_distances() -> DistanceKernel | None:
    """FAISS's all-pairs Hamming kernel (`faiss.hammings`: compiled popcount over whole hashes,
    about 1 ns per 256-bit distance, where NumPy's passes of XOR and popcount over arrays of
    words take about 2 ns per word) when faiss-cpu is installed, else None. Both inputs must be
    C-contiguous."""
    if os.environ.get(NO_COMPILED_VARIABLE):
        return None
    try:
        import faiss  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return None
    hammings, pointer = faiss.hammings, faiss.swig_ptr  # type: ignore[attr-defined, unused-ignore]

    def distances(a: Words, b: Words, out: npt.NDArray[np.int32]) -> None:
        if a.shape[1] != b.shape[1] or out.size < len(a) * len(b):
            raise ValueError("hashes of different lengths, or too small an output")
        if len(a) and len(b):
            codes_a, codes_b = pointer(a.view(np.uint8)), pointer(b.view(np.uint8))
            hammings(codes_a, codes_b, len(a), len(b), 8 * a.shape[1], pointer(out))

    return distances


def hamming_to_one(words: Words, query: Words) -> npt.NDArray[np.uint16]:
    """Distances from every row of `words` (n, w) to one query (w,)."""
    if words.shape[1] == 1:
        return popcount(words[:, 0] ^ query[0]).astype(np.uint16)
    total = np.zeros(words.shape[0], dtype=np.uint16)
    for column in range(words.shape[1]):
        total += popcount(words[:, column] ^ query[column])
    return total


def hamming_rows(left: Words, right: Words) -> npt.NDArray[np.uint16]:
    """Distances between matching rows of two (n, w) arrays."""
    total = np.zeros(left.shape[0], dtype=np.uint16)
    for column in range(left.shape[1]):
        total += popcount(left[:, column] ^ right[:, column])
    return total


def words_of(hashes: Sequence[Hash], nbits: int) -> Words:
    """Stack hashes into an (n, words) uint64 array, checking they all have `nbits` bits."""
    count = (nbits + 63) // 64
    out = np.empty((len(hashes), count), dtype=np.uint64)
    for row, value in enumerate(hashes):
        if value.nbits != nbits:
            raise TypeError(f"hashes differ in length: expected {nbits} bits, got {value.nbits}")
        out[row] = value.words()
    return out


def int64_column(words: Words) -> npt.NDArray[np.int64]:
    """The signed view of one-word hashes (what an SQLite INTEGER column holds)."""
    return words[:, 0].view(np.int64)


@functools.lru_cache(maxsize=256)
def ball_masks(width: int, radius: int) -> npt.NDArray[np.uint64]:
    """Every `width`-bit XOR mask of popcount <= `radius`, ordered by popcount (0 first)."""
    return np.concatenate([shell_masks(width, weight) for weight in range(min(radius, width) + 1)])


@functools.lru_cache(maxsize=256)
def shell_masks(width: int, weight: int) -> npt.NDArray[np.uint64]:
    """Every `width`-bit XOR mask with exactly `weight` bits set."""
    if weight > width or weight < 0:
        return np.zeros(0, dtype=np.uint64)
    if weight == 0:
        return np.zeros(1, dtype=np.uint64)
    positions = np.array(list(itertools.combinations(range(width), weight)), dtype=np.uint64)
    masks: npt.NDArray[np.uint64] = np.bitwise_or.reduce(np.left_shift(np.uint64(1), positions), axis=1)
    return masks.astype(np.uint64)


def ball_size(width: int, radius: int) -> int:
    """How many `width`-bit values lie within `radius` of a point."""
    from math import comb

    return sum(comb(width, weight) for weight in range(min(radius, width) + 1))
