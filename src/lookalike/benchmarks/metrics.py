"""Distances between many hashes at once, and recall at a fixed precision: pure NumPy.

Hashes are rows of big-endian uint64 words; the distance of every pair is XOR then popcount,
block by block so memory stays bounded. A score is "lower is more alike". For a target precision
the threshold is chosen as in thorn's perception benchmark: walk up the positive scores and stop
before the first threshold whose precision falls below the target.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Words = npt.NDArray[np.uint64]
Scores = npt.NDArray[np.float64]

_BYTE_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def popcount(words: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint8]:
    """Bits set in each uint64 (NumPy's bitwise_count where it exists, a byte table otherwise)."""
    if hasattr(np, "bitwise_count"):
        return np.asarray(np.bitwise_count(words), dtype=np.uint8)
    as_bytes = words.view(np.uint8).reshape(*words.shape, 8)
    return np.asarray(_BYTE_POPCOUNT[as_bytes].sum(axis=-1, dtype=np.uint8))


def hamming_matrix(rows: Words, columns: Words, block: int = 256) -> npt.NDArray[np.uint16]:
    """Hamming distance between every row hash and every column hash: shape (len(rows), len(columns)).

    `rows` and `columns` are (n, words) uint64 arrays of equal word count.
    """
    rows = np.ascontiguousarray(rows, dtype=np.uint64).reshape(len(rows), -1)
    columns = np.ascontiguousarray(columns, dtype=np.uint64).reshape(len(columns), -1)
    if rows.shape[1] != columns.shape[1]:
        raise ValueError(f"hashes differ in length: {rows.shape[1]} and {columns.shape[1]} words")
    out = np.empty((len(rows), len(columns)), dtype=np.uint16)
    for start in range(0, len(rows), block):
        part = rows[start : start + block]
        total = np.zeros((len(part), len(columns)), dtype=np.uint16)
        for word in range(rows.shape[1]):
            total += popcount(part[:, word, None] ^ columns[None, :, word])
        out[start : start + block] = total
    return out


def min_variant_matrix(variants: Words, columns: Words, block: int = 256) -> npt.NDArray[np.uint16]:
    """For rows given as (n, k, words) variant sets (e.g. 8 dihedral variants), the smallest
    distance of any variant to each column hash: shape (n, len(columns))."""
    variants = np.asarray(variants, dtype=np.uint64)
    best = hamming_matrix(variants[:, 0], columns, block)
    for k in range(1, variants.shape[1]):
        np.minimum(best, hamming_matrix(variants[:, k], columns, block), out=best)
    return best


def euclidean_matrix(
    rows: npt.NDArray[np.floating], columns: npt.NDArray[np.floating]
) -> npt.NDArray[np.float32]:
    """Euclidean distance between every pair of float vectors (for float-valued peer hashes)."""
    a = np.asarray(rows, dtype=np.float64)
    b = np.asarray(columns, dtype=np.float64)
    squared = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * (a @ b.T)
    distances: npt.NDArray[np.float32] = np.sqrt(np.maximum(squared, 0.0)).astype(np.float32)
    return distances


@dataclass(frozen=True)
class OperatingPoint:
    """What a threshold gives on a set of pairs."""

    threshold: float
    recall: float  # share of positive pairs with score <= threshold
    precision: float  # true / (true + false) matches; nan when nothing matches
    true_matches: int
    false_matches: int


def false_matches_at(sorted_negatives: Scores, thresholds: Scores) -> npt.NDArray[np.int64]:
    """How many negative scores are <= each threshold (negatives sorted ascending)."""
    return np.searchsorted(sorted_negatives, thresholds, side="right").astype(np.int64)


def choose_threshold(positives: Scores, sorted_negatives: Scores, target_precision: float) -> float:
    """The largest threshold, among the positive scores, reached before precision first drops
    below `target_precision` (a fraction, e.g. 0.999); -inf if even the smallest one fails.

    `sorted_negatives` may hold only the lowest negative scores: precision near 1 depends on those
    alone, as long as the list reaches past the chosen threshold.
    """
    candidates = np.unique(np.asarray(positives, dtype=np.float64))
    if candidates.size == 0:
        return float("-inf")
    true = np.searchsorted(np.sort(positives), candidates, side="right")
    false = false_matches_at(sorted_negatives, candidates)
    precision = true / (true + false)
    failing = np.nonzero(precision < target_precision)[0]
    if failing.size == 0:
        return float(candidates[-1])
    if failing[0] == 0:
        return float("-inf")
    return float(candidates[failing[0] - 1])


def operating_point(positives: Scores, sorted_negatives: Scores, threshold: float) -> OperatingPoint:
    """Recall and precision of `score <= threshold` on these pairs."""
    true = int(np.count_nonzero(np.asarray(positives) <= threshold))
    false = int(false_matches_at(sorted_negatives, np.array([threshold]))[0])
    recall = true / len(positives) if len(positives) else float("nan")
    precision = true / (true + false) if true + false else float("nan")
    return OperatingPoint(threshold, recall, precision, true, false)


def roc_points(
    positives: Scores, sorted_negatives: Scores, negative_count: int
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """(false-positive rate, recall) at every distinct score, for a ROC plot on a log x axis."""
    thresholds = np.unique(np.concatenate([positives, sorted_negatives]))
    recall = np.searchsorted(np.sort(positives), thresholds, side="right") / max(1, len(positives))
    fpr = false_matches_at(sorted_negatives, thresholds) / max(1, negative_count)
    return fpr, recall
