"""KeyTables.probe against a brute force: every (query, entry) sharing a key in some table, once."""

from __future__ import annotations

import numpy as np

from lookalike.candidates.keys import KeyLayout
from lookalike.candidates.tables import KeyTables

LAYOUT = KeyLayout(256, ((0, 2, 4), (2, 4, 6), (1, 3, 5)))


def _brute_force(
    stored: dict[int, np.ndarray], query_keys: np.ndarray, owners: np.ndarray
) -> set[tuple[int, int]]:
    pairs = set()
    for entry, rows in stored.items():
        for query_row, keys in enumerate(query_keys):
            if (rows == keys[None, :]).any():
                pairs.add((int(owners[query_row]), entry))
    return pairs


def _words(rng: np.random.Generator, count: int) -> np.ndarray:
    # few distinct key bytes, so keys collide often and buckets hold several rows
    return rng.choice(np.arange(4, dtype=np.uint64) * np.uint64(0x0101010101010101), size=(count, 4))


def test_probe_folds_every_meeting_per_owner_across_main_buffer_and_removals() -> None:
    rng = np.random.default_rng(7)
    tables = KeyTables(LAYOUT)
    stored: dict[int, np.ndarray] = {}
    ids = np.repeat(np.arange(300), 2)  # two rows (hashes) per entry
    words = _words(rng, len(ids))
    tables.add(ids, words)
    tables.compact()  # the sorted part
    late_ids = np.arange(300, 340)
    late_words = _words(rng, len(late_ids))
    tables.add(late_ids, late_words)  # the buffer
    tables.remove([5, 17, 301])
    for entry, row in zip(np.concatenate([ids, late_ids]), np.concatenate([words, late_words]), strict=True):
        if int(entry) not in (5, 17, 301):
            keys = LAYOUT.keys(row[None, :])
            stored[int(entry)] = np.concatenate([stored.get(int(entry), keys[:0]), keys])
    query_words = _words(rng, 60)
    owners = np.repeat(np.arange(20), 3)[rng.permutation(60)]
    query_keys = LAYOUT.keys(query_words)

    rows, found = tables.probe(query_keys, owners)

    got = list(zip(owners[rows].tolist(), found.tolist(), strict=True))
    assert len(got) == len(set(got)) > 100
    assert set(got) == _brute_force(stored, query_keys, owners)
    plain_rows, plain_ids = tables.probe(query_keys)
    assert set(zip(plain_rows.tolist(), plain_ids.tolist(), strict=True)) == _brute_force(
        stored, query_keys, np.arange(60)
    )
