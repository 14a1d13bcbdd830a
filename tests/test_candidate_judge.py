"""Judging candidate pairs against a brute force: the screen that drops unrelated candidates
before full judging never drops a pair the rule accepts (or a near miss it keeps), and the pairs
kept carry the same distances and variants as the rule applied to every pair."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pytest

from lookalike.candidates import judge as judging
from lookalike.candidates.batch import QueryBatch, QueryHashes
from lookalike.candidates.judge import StoredHashes, judge
from lookalike.matcher import PRESETS, Matcher
from lookalike.search.bits import compiled_distances, popcount

# (algorithm, words, query variants): the preset's hashes, and two 64-bit ones for a summed clause
SHAPES = [
    ("phash_eq", 4, 8),
    ("phash_eq_trimmed", 4, 8),
    ("phash_eq_trimmed_smooth", 4, 8),
    ("phash_eq_crops", 4, 12),
    ("phash:16", 4, 8),
    ("phash", 1, 8),
    ("ahash", 1, 1),
]
RULES = [
    PRESETS["near-duplicate"],
    # a summed clause, and a trimmed clause wider than the whole one's at the same screen words
    "phash_eq <= 56 or phash_eq_crops <= 56 or phash:16 <= 20 with quality >= 100 "
    "or phash:16 <= 20 and phash_eq <= 90 or phash + ahash <= 20 "
    "or phash_eq_trimmed <= 60 and phash:16 <= 120",
]
QUERIES, STORED = 30, 200


def _collection(seed: int) -> tuple[QueryBatch, dict[str, StoredHashes]]:
    """Random queries with variants, and stored hashes each a query variant with a random
    number of bits flipped (0 to 140 of 256, often just at a limit), so pairs fall on both sides
    of every limit; some
    hashes absent or flagged, and some queries' and entries' trimmed hash equal to the whole one
    (a picture without borders)."""
    rng = np.random.default_rng(seed)
    hashes: dict[str, QueryHashes] = {}
    stored: dict[str, StoredHashes] = {}
    for algorithm, words, variants in SHAPES:
        query = rng.integers(0, 2**64, (QUERIES, variants, words), dtype=np.uint64)
        if algorithm == "phash_eq_trimmed":
            query[: QUERIES * 4 // 5] = hashes["phash_eq"].words[: QUERIES * 4 // 5]
        quality = rng.choice(np.array([50, 150, np.nan], dtype=np.float32), QUERIES)
        hashes[algorithm] = QueryHashes(words * 64, query, quality, rng.random(QUERIES) > 0.05)
        origin = rng.integers(0, QUERIES, STORED), rng.integers(0, variants, STORED)
        bits = np.unpackbits(query[origin].view(np.uint8), axis=1)
        near_limits = np.array([limit + d for limit in (12, 20, 56, 60, 81, 90, 130) for d in (-1, 0, 1)])
        flips = np.where(
            rng.random(STORED) < 0.5, rng.choice(near_limits, STORED), rng.integers(0, 141, STORED)
        )
        for row, count in enumerate(np.minimum(flips, words * 64 // 2)):
            # half of them within the first 3 words: the screen's bound is then the distance
            span = bits.shape[1] if row % 2 or words == 1 else 3 * 64
            bits[row, rng.choice(span, count, replace=False)] ^= 1
        found = np.packbits(bits, axis=1).view(np.uint64).reshape(STORED, words)
        if algorithm == "phash_eq_trimmed":
            found[: STORED * 4 // 5] = stored["phash_eq"].words[: STORED * 4 // 5]
        stored[algorithm] = StoredHashes(
            rng.random(STORED) > 0.05,
            found,
            rng.choice(np.array([50, 150, np.nan], dtype=np.float32), STORED),
            rng.random(STORED) < 0.05,
        )
    return QueryBatch(QUERIES, hashes), stored


def _lookup(stored: dict[str, StoredHashes]) -> judging.StoredLookup:
    def lookup(algorithms: Sequence[str], ids: npt.NDArray[np.int64]) -> dict[str, StoredHashes]:
        return {a: stored[a].take(ids) for a in algorithms if a in stored}

    return lookup


def _brute_force(
    batch: QueryBatch,
    stored: dict[str, StoredHashes],
    rule: Matcher,
    rows: npt.NDArray[np.int64],
    ids: npt.NDArray[np.int64],
    near_misses: bool,
    floors: dict[str, npt.NDArray[np.int64]] | None = None,
) -> tuple[npt.NDArray[np.bool_], dict[str, npt.NDArray[np.int64]], dict[str, npt.NDArray[np.int64]]]:
    """Which pairs the rule keeps (accepted, and near misses for a rule with a local clause when
    they are wanted), every distance computed over every word of every variant; a pair's floor
    (distance to a stored variant, -1: none) replaces it when smaller, as variant 0."""
    distances, variants, lowest = {}, {}, {}
    for algorithm in rule.algorithms:
        query, found = batch.hashes[algorithm], stored[algorithm]
        every = popcount(query.words[rows] ^ found.words[ids][:, None, :]).sum(axis=2, dtype=np.int64)
        best, which = every.min(axis=1), every.argmin(axis=1)
        floor = (floors or {}).get(algorithm)
        if floor is not None:
            nearer = (floor >= 0) & (floor < best)
            best, which = np.where(nearer, floor, best), np.where(nearer, 0, which)
        usable = query.present[rows] & found.present[ids] & ~found.flagged[ids]
        distances[algorithm] = np.where(usable, best, -1)
        variants[algorithm] = which
        lowest[algorithm] = np.fmin(query.quality[rows], found.quality[ids])
    evaluation = rule.evaluate(distances, lowest)
    kept = evaluation.accepted.copy()
    if near_misses and rule.local_inliers is not None:
        kept |= rule.near_misses(evaluation)
    return kept, distances, variants


needs_faiss = pytest.mark.skipif(compiled_distances() is None, reason="faiss-cpu is not installed")
SCREENS = ["numpy", pytest.param("compiled", marks=needs_faiss)]


def _use_screen(monkeypatch: pytest.MonkeyPatch, screen: str) -> None:
    """Judge with NumPy's screen over the first words, or FAISS's kernel over whole hashes."""
    if screen == "numpy":
        monkeypatch.setattr(judging, "compiled_distances", lambda: None)


@pytest.mark.parametrize("text", RULES)
@pytest.mark.parametrize("near_misses", [False, True])
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("screen", SCREENS)
@pytest.mark.parametrize("floored", [False, True])
def test_the_screen_never_drops_a_pair_the_rule_keeps(
    text: str, near_misses: bool, seed: int, screen: str, floored: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With floors (a stored variant's distance to the query's own hash, `stored_variants`) on
    one hash, a pair kept only through its floor is kept by either screen too."""
    monkeypatch.setattr(judging, "PAIRS_PER_BLOCK", 1000)  # several blocks
    _use_screen(monkeypatch, screen)
    rule = Matcher.parse(text)
    batch, stored = _collection(seed)
    rows = np.repeat(np.arange(QUERIES, dtype=np.int64), STORED)
    ids = np.tile(np.arange(STORED, dtype=np.int64), QUERIES)
    floors = None
    if floored:
        rng = np.random.default_rng(seed + 10)
        floor = np.where(rng.random(len(rows)) < 0.1, rng.integers(0, 80, len(rows)), -1)
        floors = {"phash_eq_crops": floor}
    kept, distances, variants = _brute_force(batch, stored, rule, rows, ids, near_misses, floors)
    judged = judge(batch, rows, ids, rule, _lookup(stored), near_misses=near_misses, floors=floors)
    if floored:
        unfloored, _, _ = _brute_force(batch, stored, rule, rows, ids, near_misses)
        assert (kept & ~unfloored).any()  # some pairs are kept only through their floor

    found = set(zip(judged.rows.tolist(), judged.ids.tolist(), strict=True))
    assert found == set(zip(rows[kept].tolist(), ids[kept].tolist(), strict=True))
    assert 0 < len(found) < len(rows)  # pairs fell on both sides of the limits
    position = judged.rows * STORED + judged.ids
    for algorithm, values in distances.items():
        assert np.array_equal(judged.distances[algorithm], values[position])
        assert np.array_equal(judged.variants[algorithm], variants[algorithm][position])


def test_the_screen_counts_three_words_of_the_equalised_hashes_and_one_of_plain_phash() -> None:
    screen = judging.Screen.of(Matcher.preset("near-duplicate"), near_misses=False)
    assert screen.words == {
        "phash_eq": 3,
        "phash_eq_trimmed": 3,
        "phash_eq_trimmed_smooth": 3,
        "phash_eq_crops": 3,
        "phash:16": 1,
    }


@pytest.mark.parametrize("screen", SCREENS)
def test_unrelated_candidates_are_not_judged_in_full(screen: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Of random hashes (about 128 of 256 bits apart), only the few whose first word of plain
    pHash comes within its limit of 20 (about 1% of pairs) are judged in full (none, when the
    compiled kernel screens whole hashes)."""
    _use_screen(monkeypatch, screen)
    rule = Matcher.preset("near-duplicate")
    rng = np.random.default_rng(5)
    hashes = {
        a: QueryHashes(
            256,
            rng.integers(0, 2**64, (10, v, 4), dtype=np.uint64),
            np.full(10, np.nan, np.float32),
            np.ones(10, bool),
        )
        for a, v in [(a, 36 if a == "phash_eq_crops" else 8) for a in rule.algorithms]
    }
    stored = {
        a: StoredHashes(
            np.ones(500, bool),
            rng.integers(0, 2**64, (500, 4), dtype=np.uint64),
            np.full(500, np.nan, np.float32),
            np.zeros(500, bool),
        )
        for a in rule.algorithms
    }
    judged_in_full: list[int] = []
    full = judging._min_variant_distance
    monkeypatch.setattr(
        judging, "_min_variant_distance", lambda q, r, s: (judged_in_full.append(len(r)), full(q, r, s))[1]
    )
    rows, ids = np.repeat(np.arange(10), 500), np.tile(np.arange(500), 10)
    judged = judge(QueryBatch(10, hashes), rows, ids, rule, _lookup(stored), near_misses=False)
    assert len(judged.rows) == 0 and max(judged_in_full) < 0.02 * len(rows)


@needs_faiss
def test_the_compiled_kernel_gives_every_distance_between_two_sets_of_hashes() -> None:
    kernel = compiled_distances()
    assert kernel is not None
    rng = np.random.default_rng(3)
    for words in (1, 3, 4):
        a = rng.integers(0, 2**64, (7, words), dtype=np.uint64)
        b = rng.integers(0, 2**64, (11, words), dtype=np.uint64)
        out = np.empty(7 * 11 + 5, dtype=np.int32)  # larger than needed: the rest is left alone
        kernel(a, b, out)
        expected = popcount(a[:, None, :] ^ b[None, :, :]).sum(axis=2)
        assert np.array_equal(out[: 7 * 11].reshape(7, 11), expected)
