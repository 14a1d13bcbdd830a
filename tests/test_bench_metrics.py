"""Recall at fixed precision, threshold choice and all-pairs distances, on examples with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lookalike.benchmarks.metrics import (
    choose_threshold,
    euclidean_matrix,
    hamming_matrix,
    min_variant_matrix,
    operating_point,
    roc_points,
)
from lookalike.benchmarks.scoring import make_pair_set, pair_kinds, pair_scores
from lookalike.hash import Hash

POSITIVES = np.array([0.0, 1.0, 2.0, 3.0, 10.0])
NEGATIVES = np.array([2.0, 5.0, 11.0])  # sorted


def test_threshold_stops_before_the_first_drop_below_the_target() -> None:
    # tp at 0,1,2,3,10 = 1..5; fp = 0,0,1,1,2; precision = 1, 1, .75, .8, .714
    assert choose_threshold(POSITIVES, NEGATIVES, 0.999) == 1.0
    assert choose_threshold(POSITIVES, NEGATIVES, 0.75) == 3.0  # .714 at 10 fails
    assert choose_threshold(POSITIVES, NEGATIVES, 0.70) == 10.0  # never fails: every positive


def test_threshold_is_minus_infinity_when_the_closest_pair_is_a_false_match() -> None:
    assert choose_threshold(np.array([3.0, 4.0]), np.array([0.0]), 0.9) == -math.inf
    point = operating_point(np.array([3.0, 4.0]), np.array([0.0]), -math.inf)
    assert point.recall == 0.0 and point.true_matches == 0 and math.isnan(point.precision)


def test_operating_point_counts_true_and_false_matches() -> None:
    point = operating_point(POSITIVES, NEGATIVES, 3.0)
    assert (point.true_matches, point.false_matches) == (4, 1)
    assert point.recall == pytest.approx(0.8)
    assert point.precision == pytest.approx(0.8)


def test_roc_points_reach_full_recall_and_count_false_positive_rate() -> None:
    fpr, recall = roc_points(POSITIVES, NEGATIVES, negative_count=100)
    assert recall[-1] == 1.0
    assert fpr[np.searchsorted(np.unique(np.concatenate([POSITIVES, NEGATIVES])), 5.0)] == pytest.approx(0.02)


def _random_hashes(count: int, nbits: int, seed: int) -> list[Hash]:
    rng = np.random.default_rng(seed)
    return [Hash.from_bits(rng.random(nbits) < 0.5) for _ in range(count)]


@pytest.mark.parametrize("nbits", [64, 42, 256])
def test_hamming_matrix_equals_the_hash_distance(nbits: int) -> None:
    rows, columns = _random_hashes(7, nbits, 1), _random_hashes(300, nbits, 2)
    matrix = hamming_matrix(
        np.stack([h.words() for h in rows]), np.stack([h.words() for h in columns]), block=3
    )
    expected = np.array([[a - b for b in columns] for a in rows])
    assert np.array_equal(matrix, expected)


def test_min_variant_matrix_takes_the_closest_variant() -> None:
    hashes = _random_hashes(12, 64, 3)
    variants = np.stack([[h.words() for h in hashes[i : i + 3]] for i in (0, 3, 6)])  # 3 rows x 3 variants
    columns = np.stack([h.words() for h in hashes[9:]])
    matrix = min_variant_matrix(variants, columns)
    for row in range(3):
        for col in range(3):
            assert matrix[row, col] == min(hashes[row * 3 + k] - hashes[9 + col] for k in range(3))


def test_euclidean_matrix() -> None:
    a = np.array([[0.0, 0.0], [3.0, 4.0]])
    assert np.allclose(euclidean_matrix(a, a), [[0, 5], [5, 0]])


def test_pair_scores_split_positives_and_negatives_by_photo() -> None:
    # photo 0: original + 2 copies; photo 1: original + 1 copy; photo 2 (other half) ignored
    photo_of = [0, 0, 0, 1, 1, 2, 2]
    transform_of = [None, "blur", "flip", None, "blur", None, "blur"]
    pairs = make_pair_set(photo_of, transform_of, [0, 1])
    assert list(pairs.rows) == [0, 1, 2, 3, 4]
    score = np.arange(25, dtype=np.float32).reshape(5, 5)
    scores = pair_scores(score, pairs, keep_negatives=4)
    assert list(scores.positives) == [1.0, 2.0, 19.0]  # (0,1), (0,2), (3,4)
    assert list(scores.positive_transforms) == ["blur", "flip", "blur"]
    # negatives: rows 0-2 against columns 3-4 -> 3,4,8,9,13,14; the 4 lowest kept
    assert scores.negative_count == 6
    assert list(scores.lowest_negatives) == [3.0, 4.0, 8.0, 9.0]


def test_cached_tables_of_a_revised_algorithm_are_not_reused(tmp_path) -> None:
    """A lookalike table is cached under its algorithm's revision: a table hashed before the
    algorithm changed (phash_eq_crops gained tilt variants in revision 2) is computed again."""
    from lookalike.algorithms.registry import get_algorithm
    from lookalike.benchmarks.hashers import HashTable, load_table, save_table

    paths = ["a.jpg", "b.jpg"]
    words = np.array([[1, 2, 3, 4], [5, 6, 7, 8]], dtype=np.uint64)
    save_table(tmp_path, HashTable("lookalike:phash_eq_crops", words=words), paths)
    current = f"lookalike__phash_eq_crops.r{get_algorithm('phash_eq_crops').revision}.npz"
    assert [f.name for f in tmp_path.iterdir()] == [current]
    (tmp_path / current).rename(tmp_path / "lookalike__phash_eq_crops.npz")
    assert load_table(tmp_path, "lookalike:phash_eq_crops", paths) is None  # made by revision 1
    save_table(tmp_path, HashTable("lookalike:phash_eq", words=words), paths)
    loaded = load_table(tmp_path, "lookalike:phash_eq", paths)
    assert loaded is not None and (loaded.words == words).all()


def test_images_that_show_a_photo_in_common_are_not_negatives() -> None:
    """A composite shows other photos (its donors): it is no negative of their images, and two
    composites that show one donor are no negative of each other either."""
    # photo 0: original + pip showing photo 5; photo 1: original + collage showing 5 and 2;
    # photo 2: original; photo 5 is in the other half
    photo_of = [0, 0, 1, 1, 2, 5]
    transform_of = [None, "pip", None, "collage", None, None]
    donors_of = [(), (5,), (), (5, 2), (), ()]
    pairs = make_pair_set(photo_of, transform_of, [0, 1, 2], donors_of)
    assert [tuple(p) for p in pairs.excluded] == [(1, 3), (3, 4)]  # pip~collage (5), collage~photo 2
    assert pairs.negative_count == 8 - 2
    score = np.zeros((5, 5), dtype=np.float32)
    score[1, 3] = score[3, 4] = -1.0  # the sharing pairs are the closest by far
    scores = pair_scores(score, pairs)
    assert scores.negative_count == 6 and list(scores.lowest_negatives) == [0.0] * 6
    assert list(scores.positives) == [0.0, 0.0]
    score[0, 2] = 5.0  # photo 0's original and photo 1's: apart
    within = pair_scores(score, pairs, matched_within=0.0).matched_negatives
    assert within is not None and len(within) == 5  # 6 negatives, one apart; the sharing pairs left out
    kinds = pair_kinds(within, {"pip": "pip", "collage": "collage"})
    assert kinds == {"original ~ original": 2, "original ~ pip": 2, "collage ~ original": 1}
    assert not make_pair_set(photo_of, transform_of, [0, 1, 2]).excluded.size  # no donors named: none


def test_a_cached_table_only_hashes_the_images_it_lacks(tmp_path) -> None:
    """Adding edits to a benchmark hashes the new images only; the cache then holds both."""
    from conftest import COMMITTED_PHOTOS
    from lookalike.benchmarks.hashing import hash_all

    paths = [str(p) for p in COMMITTED_PHOTOS[:4]]
    hashed: list[str] = []

    def hash_count(what: str, done: int) -> None:
        hashed.append(what)

    first, _ = hash_all(paths[:3], tmp_path, ["phash", "dhash"], [], False, 1, progress=hash_count)
    assert len(hashed) == 3
    hashed.clear()
    both, failures = hash_all(paths, tmp_path, ["phash", "dhash"], [], False, 1, progress=hash_count)
    assert len(hashed) == 1 and not failures  # only the fourth image
    fresh, _ = hash_all(paths, tmp_path / "fresh", ["phash", "dhash"], [], False, 1)
    for name in ("lookalike:phash", "lookalike:dhash"):
        assert np.array_equal(both[name].words, fresh[name].words)
        assert np.array_equal(both[name].words[:3], first[name].words)
    hashed.clear()
    again, _ = hash_all(paths[1:], tmp_path, ["phash"], [], False, 1, progress=hash_count)
    assert not hashed and np.array_equal(again["lookalike:phash"].words, fresh["lookalike:phash"].words[1:])
