"""Stored variants searched from the query's side (`lookalike.candidates.stored_variants`): the
exact search equals brute force, and the keyed one finds a subset of it with the same distances,
including copies of stored variants with a few bits changed; after writes to an index they answer
as if made anew, and SQLite brings them up to date in place."""

from __future__ import annotations

import numpy as np

from hash_sets import flipped, variant_answers
from lookalike.candidates.keys import dct_layout
from lookalike.candidates.stored_variants import StoredVariants


def _brute_force(query: np.ndarray, owners: np.ndarray, words: np.ndarray, limit: int) -> dict:
    best: dict[tuple[int, int], int] = {}
    for row, hash_words in enumerate(query):
        for owner, variant in zip(owners.tolist(), words, strict=True):
            distance = sum(bin(int(a) ^ int(b)).count("1") for a, b in zip(hash_words, variant, strict=True))
            if distance <= limit:
                best[(row, owner)] = min(distance, best.get((row, owner), distance))
    return best


def test_nearest_variants_match_brute_force() -> None:
    rng = np.random.default_rng(7)
    layout = dct_layout(16)
    assert layout is not None
    owners = np.repeat(np.arange(10, 70, dtype=np.int64), 3)  # 60 entries, 3 variants each
    words = rng.integers(0, 2**63, size=(len(owners), 4), dtype=np.uint64)
    stored = StoredVariants(layout, owners, words)
    # queries: near copies of some variants (a few bits flipped), and unrelated hashes
    near = words[::7].copy()
    for row in range(len(near)):
        for bit in rng.choice(256, size=int(rng.integers(0, 12)), replace=False).tolist():
            near[row, bit // 64] ^= np.uint64(1 << (63 - bit % 64))
    query = np.concatenate([near, rng.integers(0, 2**63, size=(5, 4), dtype=np.uint64)])
    limit = 56
    expected = _brute_force(query, owners, words, limit)
    rows, ids, distances = stored.nearest(query, limit, exact=True)
    assert (
        dict(zip(zip(rows.tolist(), ids.tolist(), strict=True), distances.tolist(), strict=True)) == expected
    )
    rows, ids, distances = stored.nearest(query, limit)
    keyed = dict(zip(zip(rows.tolist(), ids.tolist(), strict=True), distances.tolist(), strict=True))
    assert keyed.items() <= expected.items()
    assert {(row, int(owners[7 * row])) for row in range(len(near))} <= set(keyed)  # near copies found


def test_no_variants_find_nothing() -> None:
    layout = dct_layout(16)
    assert layout is not None
    stored = StoredVariants.from_blobs(layout, [])
    assert len(stored) == 0
    rows, _, _ = stored.nearest(np.zeros((2, 4), dtype=np.uint64), 56)
    assert len(rows) == 0


def test_an_update_answers_as_the_store_made_anew() -> None:
    rng = np.random.default_rng(11)
    layout = dct_layout(16)
    assert layout is not None
    owners = np.repeat(np.arange(100, dtype=np.int64), 2)
    words = rng.integers(0, 2**63, size=(len(owners), 4), dtype=np.uint64)
    stored = StoredVariants(layout, owners, words)
    # entries 0-9 get new variants, 10-19 lose theirs, 200-204 are new
    changed = np.concatenate([np.arange(20), np.arange(200, 205)]).astype(np.int64)
    new_words = rng.integers(0, 2**63, size=(15, 4), dtype=np.uint64)
    new_owners = np.concatenate([np.arange(10), np.arange(200, 205)]).astype(np.int64)
    rows = [(int(o), new_words[i : i + 1].astype(">u8").tobytes()) for i, o in enumerate(new_owners.tolist())]
    updated = stored.update(changed, rows)
    keep = ~np.isin(owners, np.arange(20))
    anew = StoredVariants(
        layout, np.concatenate([owners[keep], new_owners]), np.concatenate([words[keep], new_words])
    )
    assert updated is stored and len(updated) == len(anew) == 160 + 15
    query = np.concatenate([flipped(words, rng, 6), flipped(new_words, rng, 6)])
    for exact in (True, False):
        assert variant_answers(updated, query, exact=exact) == variant_answers(anew, query, exact=exact)
    found = variant_answers(updated, query, exact=True)
    old_copies = {(row, owner) for row, owner in found if row < len(words)}
    assert old_copies and not any(owner < 20 for _, owner in old_copies)  # replaced variants forgotten
    assert {(len(words) + i, int(o)) for i, o in enumerate(new_owners.tolist())} <= set(found)
    # once most rows belong to changed entries the store is made again from the living ones
    remade = updated.update(np.arange(30, 100, dtype=np.int64), [])
    assert remade is not updated and len(remade) == len(remade.owners) == 20 + 15
