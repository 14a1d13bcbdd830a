"""Exact Hamming search by scanning every hash: vectorised XOR + popcount over uint64 words.

The fallback for large radii (where no index can prune) and the reference the faster structures
are tested against.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from lookalike.search.bits import Words, hamming_to_one

Rows = npt.NDArray[np.int64]
Mask = npt.NDArray[np.bool_] | None


def brute_range(
    words: Words, queries: Words, max_distance: int, excluded: Mask = None
) -> tuple[npt.NDArray[np.int64], Rows, npt.NDArray[np.uint16]]:
    """Every (query index, row, distance) with distance <= max_distance, by query then row."""
    found_q: list[npt.NDArray[np.int64]] = []
    found_r: list[Rows] = []
    found_d: list[npt.NDArray[np.uint16]] = []
    for index in range(queries.shape[0]):
        distances = hamming_to_one(words, queries[index])
        hit = distances <= max_distance
        if excluded is not None:
            hit &= ~excluded
        rows = np.flatnonzero(hit).astype(np.int64)
        found_q.append(np.full(len(rows), index, dtype=np.int64))
        found_r.append(rows)
        found_d.append(distances[rows])
    return _concat(found_q, found_r, found_d)


def brute_knn(
    words: Words, queries: Words, k: int, excluded: Mask = None
) -> tuple[npt.NDArray[np.int64], Rows, npt.NDArray[np.uint16]]:
    """The k nearest rows per query plus every row tied with the k-th (callers break ties by key)."""
    found_q: list[npt.NDArray[np.int64]] = []
    found_r: list[Rows] = []
    found_d: list[npt.NDArray[np.uint16]] = []
    for index in range(queries.shape[0]):
        distances = hamming_to_one(words, queries[index])
        if excluded is not None:
            distances[excluded] = np.iinfo(np.uint16).max
            available = int(len(distances) - excluded.sum())
        else:
            available = len(distances)
        if available == 0 or k <= 0:
            continue
        kth = int(np.partition(distances, min(k, available) - 1)[min(k, available) - 1])
        rows = np.flatnonzero(distances <= kth).astype(np.int64)
        found_q.append(np.full(len(rows), index, dtype=np.int64))
        found_r.append(rows)
        found_d.append(distances[rows])
    return _concat(found_q, found_r, found_d)


def _concat(
    found_q: list[npt.NDArray[np.int64]], found_r: list[Rows], found_d: list[npt.NDArray[np.uint16]]
) -> tuple[npt.NDArray[np.int64], Rows, npt.NDArray[np.uint16]]:
    if not found_q:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0, dtype=np.uint16)
    return np.concatenate(found_q), np.concatenate(found_r), np.concatenate(found_d)
