"""The scale benchmark's peers answer the duplicate search's question exactly as a brute force does:
every pair within the radius, on 2,000 hashes with planted copies at and just past the radius."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from lookalike.benchmarks.scale import Collection, RealHashes
from lookalike.benchmarks.scale_peers import (
    brute_force_pairs,
    faiss_flat_variants,
    multihash_tables,
    peers,
    run_peer,
)

COUNT = 2000


def _flip(word_row: npt.NDArray[np.uint64], bits: int, rng: np.random.Generator) -> npt.NDArray[np.uint64]:
    copy = word_row.copy()
    for bit in rng.choice(64 * len(copy), size=bits, replace=False).tolist():
        copy[bit // 64] ^= np.uint64(1) << np.uint64(bit % 64)
    return copy


def planted_hashes(
    words: int, radius: int, seed: int = 3
) -> tuple[npt.NDArray[np.uint64], set[tuple[int, int]], set[tuple[int, int]]]:
    """Random hashes where rows 2i and 2i + 1 (i < 300) are copies: within the radius for even i
    (every distance from 0 to the radius), one bit past it for odd i."""
    rng = np.random.default_rng(seed)
    hashes = rng.integers(0, 2**64, (COUNT, words), dtype=np.uint64)
    inside, outside = set(), set()
    for pair in range(300):
        a, b = 2 * pair, 2 * pair + 1
        near = pair % 2 == 0
        hashes[b] = _flip(hashes[a], pair // 2 % (radius + 1) if near else radius + 1, rng)
        (inside if near else outside).add((a, b))
    return hashes, inside, outside


@pytest.mark.parametrize(
    ("name", "words", "radius"),
    [
        *[(name, 4, 56) for name in ("faiss-flat", "faiss-multihash", "pybktree")],
        *[(name, 1, 10) for name in ("faiss-flat", "faiss-multihash", "pybktree", "cppbktree")],
    ],
)
def test_exact_peer_finds_the_brute_force_pairs(name: str, words: int, radius: int) -> None:
    hashes, inside, outside = planted_hashes(words, radius)
    first, second = brute_force_pairs(hashes, radius)
    truth = set(zip(first.tolist(), second.tolist(), strict=True))
    assert inside <= truth and not outside & truth

    run = run_peer(peers(radius)[name], hashes, radius)

    found = set(zip(run.first.tolist(), run.second.tolist(), strict=True))
    assert len(run.first) == len(found) == len(truth)  # each pair once, a < b
    assert found == truth
    assert run.rows_answered == COUNT and not run.estimated


def test_ivf_finds_only_pairs_within_the_radius_and_the_close_copies() -> None:
    hashes, inside, _ = planted_hashes(4, 56)
    first, second = brute_force_pairs(hashes, 56)
    truth = set(zip(first.tolist(), second.tolist(), strict=True))

    run = run_peer(peers(56)["faiss-ivf"], hashes, 56)

    found = set(zip(run.first.tolist(), run.second.tolist(), strict=True))
    assert found <= truth
    close = {(a, b) for a, b in inside if np.bitwise_count(hashes[a] ^ hashes[b]).sum() <= 4}
    assert close and close <= found


def test_faiss_queried_with_variants_finds_the_pairs_any_variant_brings_within_the_radius() -> None:
    hashes, inside, outside = planted_hashes(4, 56)
    rng = np.random.default_rng(9)
    variants = rng.integers(0, 2**64, (COUNT, 3, 4), dtype=np.uint64)
    variants[:, 0] = hashes  # the first variant is the hash itself
    rotated = set()
    for a, b in sorted(outside)[:50]:  # a's rotation is a copy of b: found only through it
        variants[a, 2] = _flip(hashes[b], 20, rng)
        rotated.add((a, b))
    distances = np.full((COUNT, COUNT), 256)  # [a, b]: a's nearest variant to b
    for variant in range(3):
        for start in range(0, COUNT, 200):
            block = np.bitwise_count(variants[start : start + 200, variant, None] ^ hashes[None]).sum(axis=2)
            distances[start : start + 200] = np.minimum(distances[start : start + 200], block)
    near = np.minimum(distances, distances.T) <= 56
    truth = {(a, b) for a, b in zip(*np.nonzero(near), strict=True) if a < b}
    assert inside | rotated <= truth

    run = run_peer(faiss_flat_variants(variants), hashes, 56, variants=variants)

    found = set(zip(run.first.tolist(), run.second.tolist(), strict=True))
    assert len(run.first) == len(found)
    assert found == truth
    assert run.beyond_radius == 0


def test_cppbktree_refuses_hashes_longer_than_64_bits() -> None:
    # its byte-string tree measures 256-bit hashes as 4 x their first 8 bytes' distance
    hashes, _, _ = planted_hashes(4, 56)
    with pytest.raises(ValueError, match="64-bit hashes only"):
        run_peer(peers(56)["cppbktree"], hashes, 56)


def test_multihash_is_set_up_to_be_exact_at_the_radius() -> None:
    tables, flips = multihash_tables(256, 56)
    assert (tables, flips) == (16, 3)
    assert tables * (flips + 1) > 56  # a pair within 56 bits agrees within 3 bits on a substring


def test_over_budget_the_first_rows_are_answered_and_the_rest_sampled() -> None:
    hashes, inside, _ = planted_hashes(4, 56)
    peer = peers(56)["pybktree"]
    run = run_peer(peer, hashes, 56, answer_first=600, budget_seconds=0.0)

    found = set(zip(run.first.tolist(), run.second.tolist(), strict=True))
    assert inside <= found  # the planted rows (< 600) were all answered
    assert run.estimated and 600 <= run.rows_answered < COUNT
    assert run.search_seconds > 0


def test_collection_words_of_gives_what_hashes_gives() -> None:
    rng = np.random.default_rng(5)
    images = 40
    words = rng.integers(0, 2**64, (images, 4), dtype=np.uint64)
    real = RealHashes(
        ("phash_eq",),
        {"phash_eq": words},
        {"phash_eq": words[:, None]},
        {"phash_eq": np.full(images, np.nan, np.float32)},
        np.arange(images, dtype=np.int64) // 4,
        np.arange(images) % 4 == 0,
    )
    collection = Collection(
        500, np.arange(8, dtype=np.int64), rng.choice(np.arange(0, images, 4), 492), real, 7
    )

    expected = collection.hashes(0, 500, False)["phash_eq"][0]
    derived = collection.words_of(words, 0, 0, 500)

    assert np.array_equal(derived, expected)
    assert np.array_equal(derived[:8], words[:8])  # planted rows are the real hashes
    flipped = np.bitwise_count(derived[8:] ^ words[collection.seed_rows]).sum(axis=1) / 256
    assert 0.3 < flipped.mean() < 0.4  # synthetic rows: about 35% of bits flipped


def test_hashes_equal_in_the_seed_photo_stay_equal_in_its_synthetic_images() -> None:
    rng = np.random.default_rng(6)
    images = 40
    whole = rng.integers(0, 2**64, (images, 4), dtype=np.uint64)
    trimmed = whole.copy()
    framed = np.arange(images) % 2 == 1  # half the photos have a border: their trimmed hash differs
    trimmed[framed] = rng.integers(0, 2**64, (int(framed.sum()), 4), dtype=np.uint64)
    names = ("phash_eq", "phash_eq_trimmed")
    real = RealHashes(
        names,
        dict(zip(names, (whole, trimmed), strict=True)),
        dict(zip(names, (whole[:, None], trimmed[:, None]), strict=True)),
        {name: np.full(images, np.nan, np.float32) for name in names},
        np.arange(images, dtype=np.int64),
        np.ones(images, dtype=bool),
    )
    collection = Collection(601, np.zeros(1, dtype=np.int64), rng.choice(images, 600), real, 7)

    made = {name: (words[1:], quality) for name, (words, quality) in collection.hashes(0, 601, False).items()}
    equal = np.all(made["phash_eq"][0] == made["phash_eq_trimmed"][0], axis=1)
    assert np.array_equal(equal, ~framed[collection.seed_rows])  # equal exactly where the seed's are
    apart = np.bitwise_count(made["phash_eq"][0] ^ whole[collection.seed_rows]).sum(axis=1) / 256
    assert 0.3 < apart.mean() < 0.4  # each still about 35% from its seed
    trimmed_apart = np.bitwise_count(made["phash_eq_trimmed"][0] ^ trimmed[collection.seed_rows]).sum(axis=1)
    assert 0.3 < trimmed_apart.mean() / 256 < 0.4
