"""The in-memory search structures answer exactly what a brute-force scan answers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hash_sets import photo_hashes, random_hashes
from lookalike import Hash
from lookalike.search import HashStore, MultiIndexTable, chunk_layout, chunk_radii, words_of
from lookalike.search.bits import ball_masks, ball_size, popcount, popcount_lut
from lookalike.search.mih import guaranteed_distance


def _reference_range(hashes: list[Hash], queries: list[Hash], radius: int) -> set[tuple[int, int, int]]:
    return {
        (q, row, query - value)
        for q, query in enumerate(queries)
        for row, value in enumerate(hashes)
        if query - value <= radius
    }


def _hits(store: HashStore, queries: list[Hash], radius: int, ids: np.ndarray) -> set[tuple[int, int, int]]:
    hits = store.range_search(words_of(queries, queries[0].nbits), radius)
    row_of = {int(i): row for row, i in enumerate(ids)}
    return {
        (int(q), row_of[int(i)], int(d)) for q, i, d in zip(hits.query, hits.ids, hits.distances, strict=True)
    }


def _store(hashes: list[Hash], chunk_bits: int | None = None) -> tuple[HashStore, np.ndarray]:
    store = HashStore(hashes[0].nbits, chunk_bits=chunk_bits)
    ids = np.arange(len(hashes), dtype=np.int64) * 7 + 3
    store.add(ids, words_of(hashes, hashes[0].nbits))
    store.compact()
    return store, ids


def test_popcount_lookup_table_matches_native_popcount() -> None:
    values = np.random.default_rng(0).integers(0, 2**63, size=1000, dtype=np.int64).view(
        np.uint64
    ) * np.uint64(3)
    expected = np.array([bin(int(v)).count("1") for v in values], dtype=np.uint8)
    assert (popcount_lut(values) == expected).all()
    assert (popcount(values) == expected).all()


@pytest.mark.parametrize(
    ("nbits", "count"), [(64, 10), (64, 10_000_000), (42, 5000), (256, 1_000_000), (1024, 100)]
)
def test_chunk_layout_covers_every_bit_once(nbits: int, count: int) -> None:
    chunks = chunk_layout(nbits, count)
    covered: set[tuple[int, int]] = set()
    for chunk in chunks:
        bits = {(chunk.word, chunk.shift + i) for i in range(chunk.width)}
        assert not bits & covered
        covered |= bits
    word_count = (nbits + 63) // 64
    assert len(covered) == nbits
    assert all(word < word_count for word, _ in covered)


@pytest.mark.parametrize("chunks", [2, 3, 4, 7])
def test_chunk_radii_guarantee_exactly_the_requested_radius(chunks: int) -> None:
    for radius in range(40):
        assert guaranteed_distance(chunk_radii(chunks, radius)) == radius


def test_ball_masks_are_every_value_within_the_radius() -> None:
    masks = ball_masks(10, 3)
    assert len(masks) == len(set(masks.tolist())) == ball_size(10, 3)
    assert all(bin(int(m)).count("1") <= 3 for m in masks)


@pytest.mark.parametrize("nbits", [64, 42])
def test_range_search_matches_brute_force_on_random_hashes_r0_to_32(nbits: int) -> None:
    hashes = random_hashes(3000, nbits, seed=nbits, planted=600, max_flips=12)
    queries = [hashes[i] for i in range(0, 3000, 97)] + random_hashes(5, nbits, seed=99)
    store, ids = _store(hashes)
    assert store.uses_mih(4)
    for radius in range(33):
        assert _hits(store, queries, radius, ids) == _reference_range(hashes, queries, radius), radius


def test_range_search_matches_brute_force_on_random_256_bit_hashes_r0_to_64() -> None:
    hashes = random_hashes(1500, 256, seed=256, planted=400, max_flips=40)
    queries = [hashes[i] for i in range(0, 1500, 71)]
    store, ids = _store(hashes)
    assert store.uses_mih(31)
    for radius in range(65):
        assert _hits(store, queries, radius, ids) == _reference_range(hashes, queries, radius), radius


@pytest.mark.slow
@pytest.mark.parametrize(("algorithm", "max_radius"), [("phash", 32), ("dhash", 32), ("phash:16", 64)])
def test_range_search_matches_brute_force_on_real_photo_hashes(
    algorithm: str, max_radius: int, photos: list[Path]
) -> None:
    hashes = list(photo_hashes(algorithm, tuple(photos)))
    store, ids = _store(hashes, chunk_bits=6)  # small chunks: the table is used despite few photos
    queries = hashes[::5]
    for radius in range(max_radius + 1):
        assert _hits(store, queries, radius, ids) == _reference_range(hashes, queries, radius), radius


@pytest.mark.parametrize("scan_below", [0, 10**9], ids=["growing-radii", "scan"])
@pytest.mark.parametrize(("nbits", "k"), [(64, 1), (64, 10), (256, 5), (42, 30)])
def test_knn_returns_the_k_nearest_and_every_tie(
    nbits: int, k: int, scan_below: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("lookalike.search.store.KNN_SCAN_BELOW", scan_below)
    hashes = random_hashes(4000, nbits, seed=k, planted=300, max_flips=6)
    store, ids = _store(hashes)
    queries = [hashes[i] for i in range(0, 4000, 331)] + random_hashes(3, nbits, seed=7)
    hits = store.knn(words_of(queries, nbits), k)
    for q, (found_ids, found_d) in enumerate(hits.split(len(queries))):
        distances = sorted(queries[q] - h for h in hashes)
        kth = distances[k - 1]
        expected = {int(ids[row]) for row, h in enumerate(hashes) if queries[q] - h <= kth}
        assert set(found_ids.tolist()) == expected
        assert sorted(found_d.tolist()) == distances[: len(expected)]


def test_store_stays_exact_through_adds_removes_and_compaction() -> None:
    hashes = random_hashes(6000, 64, seed=3, planted=1000, max_flips=8)
    words = words_of(hashes, 64)
    store = HashStore(64)
    store.add(np.arange(4000), words[:4000])
    store.compact()
    store.add(np.arange(4000, 6000), words[4000:])  # stays in the buffer
    store.remove(np.arange(0, 6000, 3))  # from the table and the buffer
    store.add(np.array([1]), words[5:6])  # id 1 now holds hash 5
    alive = {i: hashes[i] for i in range(6000) if i % 3}
    alive[1] = hashes[5]
    assert len(store) == len(alive)
    queries = hashes[::211]
    for radius in (0, 3, 8, 20):
        hits = store.range_search(words_of(queries, 64), radius)
        got = {(int(q), int(i), int(d)) for q, i, d in zip(hits.query, hits.ids, hits.distances, strict=True)}
        expected = {
            (q, i, query - value)
            for q, query in enumerate(queries)
            for i, value in alive.items()
            if query - value <= radius
        }
        assert got == expected


def test_flagged_rows_are_skipped_unless_included() -> None:
    store = HashStore(64)
    words = np.array([[0], [1], [3]], dtype=np.uint64)
    store.add(np.array([10, 11, 12]), words, flagged=np.array([True, False, False]))
    assert store.range_search(np.array([[0]], dtype=np.uint64), 2).ids.tolist() == [11, 12]
    assert store.range_search(np.array([[0]], dtype=np.uint64), 2, include_flagged=True).ids.tolist() == [
        10,
        11,
        12,
    ]


@pytest.mark.parametrize("nbits", [64, 256])
def test_all_pairs_match_brute_force(nbits: int) -> None:
    hashes = random_hashes(2500, nbits, seed=nbits + 1, planted=500, max_flips=10)
    store, ids = _store(hashes)
    bits = np.array([h.bits for h in hashes], dtype=np.float32)  # distances by matrix product
    matrix = np.rint(bits @ (1 - bits).T + (1 - bits) @ bits.T).astype(int)
    for radius in (0, 4, 8, 12):
        first, second, distances = store.pairs(radius)
        got = {
            (min(a, b), max(a, b), int(d))
            for a, b, d in zip(first.tolist(), second.tolist(), distances, strict=True)
        }
        rows, cols = np.nonzero(np.triu(matrix <= radius, k=1))
        expected = {(int(ids[i]), int(ids[j]), int(matrix[i, j])) for i, j in zip(rows, cols, strict=True)}
        assert got == expected, radius


def test_snapshot_round_trip_answers_the_same(tmp_path: Path) -> None:
    hashes = random_hashes(3000, 64, seed=5, planted=500, max_flips=6)
    store, _ = _store(hashes)
    store.save(tmp_path / "s.npz", rev=7)
    loaded, extra = HashStore.load(tmp_path / "s.npz")
    assert extra == {"rev": "7"}
    queries = words_of(hashes[::100], 64)
    for radius in (0, 5, 12):
        a, b = store.range_search(queries, radius), loaded.range_search(queries, radius)
        assert (a.ids == b.ids).all() and (a.distances == b.distances).all()


def test_multi_index_table_orders_rows_by_first_chunk() -> None:
    words = words_of(random_hashes(1000, 64, seed=11), 64)
    table, order = MultiIndexTable.build(words, 64)
    assert sorted(order.tolist()) == list(range(1000))
    first = table.chunks[0].values(table.words)
    assert (np.diff(first) >= 0).all()
