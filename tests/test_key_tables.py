"""KeyTables.probe against a brute force: every (query, entry) sharing a key in some table, once; in
the compact row format, in several passes, and from snapshots of either row format."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lookalike.candidates import tables as tables_module
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


def _stored_keys(ids: np.ndarray, words: np.ndarray, gone: set[int]) -> dict[int, np.ndarray]:
    stored: dict[int, np.ndarray] = {}
    for entry, row in zip(ids, words, strict=True):
        if int(entry) not in gone:
            keys = LAYOUT.keys(row[None, :])
            stored[int(entry)] = np.concatenate([stored.get(int(entry), keys[:0]), keys])
    return stored


def _probed(tables: KeyTables, query_keys: np.ndarray) -> set[tuple[int, int]]:
    rows, found = tables.probe(query_keys)
    return set(zip(rows.tolist(), found.tolist(), strict=True))


def test_compact_rows_keep_every_meeting_when_ids_need_more_than_32_bits_with_the_key() -> None:
    rng = np.random.default_rng(11)
    ids = rng.choice(2**32 - 1, size=200, replace=False)  # 32-bit ids: rows fall back to 64 bits
    words = _words(rng, len(ids))
    tables = KeyTables(LAYOUT)
    tables.add(ids, words)
    tables.compact()
    assert tables._main.rows.dtype == np.uint64
    query_keys = LAYOUT.keys(_words(rng, 30))
    assert _probed(tables, query_keys) == _brute_force(
        _stored_keys(ids, words, set()), query_keys, np.arange(30)
    )


def test_probe_in_several_passes_over_the_tables_finds_the_same_pairs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rng = np.random.default_rng(3)
    ids = np.arange(500)
    words = _words(rng, len(ids))
    tables = KeyTables(LAYOUT)
    tables.add(ids, words)
    tables.compact()
    tables.add(np.arange(500, 520), _words(rng, 20))  # and the buffer
    query_keys = LAYOUT.keys(_words(rng, 40))
    at_once = tables.probe_tables(query_keys)
    monkeypatch.setattr(tables_module, "PROBES_PER_PASS", 50)  # one table per pass
    one_by_one = tables.probe_tables(query_keys)
    as_set = [set(zip(*(part.tolist() for part in found), strict=True)) for found in (at_once, one_by_one)]
    assert as_set[0] == as_set[1] and len(as_set[0]) > 100


def test_snapshot_of_compact_rows_and_of_whole_rows_open_with_the_same_pairs(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    ids = np.repeat(np.arange(400), 2)
    words = _words(rng, len(ids))
    tables = KeyTables(LAYOUT)
    tables.add(ids, words)
    tables.remove([3, 4])
    tables.add(np.arange(400, 430), _words(rng, 30))
    query_keys = LAYOUT.keys(_words(rng, 50))
    expected = _probed(tables, query_keys)
    tables.save(tmp_path / "compact", {"rev": 1})
    loaded = KeyTables.load(tmp_path / "compact", LAYOUT)
    assert loaded is not None and "upgraded" not in loaded[1]
    assert _probed(loaded[0], query_keys) == expected
    assert loaded[0]._main.rows.dtype == np.uint32 and not isinstance(loaded[0]._main.rows, np.memmap)
    # the format before compact rows: one sorted array of whole (table, key, id) values
    whole = tables._main.whole(tables.key_bits)
    old = tmp_path / "old"
    old.mkdir()
    np.save(old / "keys.npy", whole)
    (old / "meta.json").write_text(
        json.dumps({"rev": 1, "layout": [256, [list(t) for t in LAYOUT.tables]], "format": 1})
    )
    upgraded = KeyTables.load(old, LAYOUT)
    assert upgraded is not None and upgraded[1]["upgraded"] is True
    assert _probed(upgraded[0], query_keys) == expected


def test_a_word_store_snapshot_opens_with_its_direct_table_and_answers_the_same(tmp_path: Path) -> None:
    """The first lookup after opening a snapshot reads a few rows, not every id: the id -> row
    table is saved with the words (at ten million images, building it read the whole id array)."""
    from lookalike.candidates.tables import WordStore

    rng = np.random.default_rng(7)
    ids = np.sort(rng.choice(50_000, size=30_000, replace=False)).astype(np.int64)
    words = rng.integers(0, 2**63, size=(len(ids), 4), dtype=np.uint64)
    store = WordStore(256)
    store.upsert(ids, words)
    store.save(tmp_path / "words", {"rev": 1})
    loaded = WordStore.load(tmp_path / "words", 256)
    assert loaded is not None
    opened = loaded[0]
    assert opened._position is not None and isinstance(opened._position, np.ndarray)
    wanted = np.concatenate(
        [ids[::7], np.array([-3, 50_001, 10**9], dtype=np.int64), rng.integers(0, 50_000, 500)]
    )
    for mine, theirs in zip(opened.lookup(wanted), store.lookup(wanted), strict=True):
        assert np.array_equal(mine, theirs, equal_nan=mine.dtype.kind == "f")
    assert opened.lookup(ids[:5])[0].all() and np.array_equal(opened.lookup(ids[:5])[1], words[:5])


def test_sparse_ids_have_no_direct_table_and_are_found_by_search(tmp_path: Path) -> None:
    from lookalike.candidates.tables import WordStore

    ids = np.array([5, 10**12, 10**15], dtype=np.int64)
    store = WordStore(64)
    store.upsert(ids, np.array([[1], [2], [3]], dtype=np.uint64))
    store.save(tmp_path / "words", {"rev": 1})
    loaded = WordStore.load(tmp_path / "words", 64)
    assert loaded is not None and loaded[0]._position is None
    present, found, _, _ = loaded[0].lookup(np.array([10**12, 6], dtype=np.int64))
    assert present.tolist() == [True, False] and found[:, 0].tolist() == [2, 0]


@pytest.mark.parametrize(
    "layout", [LAYOUT, KeyLayout(64, ((0,), (3,)))], ids=["buckets of keys", "a key a bucket"]
)
@pytest.mark.parametrize("changed", [False, True], ids=["sorted part", "with adds and removals"])
def test_probe_keys_returns_every_meeting_of_a_key_but_those_of_keys_held_limit_times(
    layout: KeyLayout, changed: bool
) -> None:
    """(probe, entry) per (key, table) probe, against a brute force over the live rows; with a
    limit, a key that many live rows hold returns nothing, the rest all: in the sorted part,
    and with recent adds in the buffer and removals pending (a key common in the sorted part
    but not among its live rows still returns them; one split between the parts returns none)."""
    rng = np.random.default_rng(11)
    tables = KeyTables(layout)
    ids = np.arange(2000)
    words = rng.integers(0, 2**63, size=(len(ids), layout.nbits // 64), dtype=np.int64).astype(np.uint64)
    words[:300] = words[0]  # one key in every table that 300 rows hold
    words[300:370] = words[300]  # and one that 70 hold, 10 of them removed below
    words[400:450] = words[400]  # and one that 50 hold, 20 more added below
    stored_keys = layout.keys(words)
    live = np.ones(len(ids), dtype=bool)
    first = 1980 if changed else len(ids)
    tables.add(ids[:first], words[:first])
    tables.compact()
    if changed:
        tables.add(ids[first:], words[first:])  # the buffer
        more = np.arange(2000, 2020)
        tables.add(more, np.repeat(words[400:401], len(more), axis=0))
        ids = np.concatenate([ids, more])
        stored_keys = np.concatenate([stored_keys, np.repeat(stored_keys[400:401], len(more), axis=0)])
        live = np.concatenate([live, np.ones(len(more), dtype=bool)])
        tables.remove(np.arange(300, 310))
        live[300:310] = False
    probe_table = np.repeat(np.arange(layout.table_count), 50)
    probe_keys = np.concatenate(
        [stored_keys[rng.integers(0, 1900, 50), t] for t in range(layout.table_count)]
    )
    probe_keys[:3] = stored_keys[[0, 300, 400], 0]
    for limit in (None, 64):
        probes, found = tables.probe_keys(probe_keys, probe_table, limit)
        expected = []
        for p, (t, k) in enumerate(zip(probe_table, probe_keys, strict=True)):
            holders = ids[(stored_keys[:, t] == k) & live]
            if limit is None or len(holders) < limit:
                expected += [(p, int(entry)) for entry in holders]
        assert sorted(zip(probes.tolist(), found.tolist(), strict=True)) == sorted(expected)


def _sorted_part(seed: int, count: int) -> tuple[np.random.Generator, KeyTables, np.ndarray, np.ndarray]:
    """Tables holding entries 0..count-1 (random words) in their sorted part, and two fresh words."""
    rng = np.random.default_rng(seed)
    tables = KeyTables(LAYOUT)
    words = rng.integers(0, 2**63, size=(count, 4), dtype=np.uint64)
    tables.add(np.arange(count), words)
    tables.compact()
    return rng, tables, words, rng.integers(0, 2**63, size=(2, 4), dtype=np.uint64)


def test_an_entry_replaced_while_its_rows_are_in_the_sorted_part_is_found_with_its_new_rows() -> None:
    """`replace` of an entry held in the sorted part: its new rows wait in the buffer and are
    found at once (the removal hid them too, until the next compaction), its old ones are not."""
    _, tables, words, pair = _sorted_part(11, 50)
    fresh = pair[:1]
    tables.replace([7], fresh)
    _, ids = tables.probe(LAYOUT.keys(fresh))
    assert ids.tolist() == [7]
    assert 7 not in tables.probe(LAYOUT.keys(words[7:8]))[1].tolist()
    keys = LAYOUT.keys(fresh)[0]
    _, found = tables.probe_keys(keys, np.arange(LAYOUT.table_count), limit=5)
    assert found.tolist() == [7] * LAYOUT.table_count
    tables.compact()
    assert tables.probe(LAYOUT.keys(fresh))[1].tolist() == [7]


@pytest.mark.parametrize("step", [1, 3, 1000], ids=["dense ids", "sparse ids", "very sparse ids"])
def test_words_at_reads_one_word_of_each_row_as_lookup_does(step: int) -> None:
    """`WordStore.words_at` against `lookup`: the word asked of each id's row, 0 for an absent id;
    with `held` (every id stored) the same, by the direct table or by search."""
    from lookalike.candidates.tables import WordStore

    rng = np.random.default_rng(step)
    store = WordStore(64 * 20)
    ids = np.arange(500) * step
    words = rng.integers(0, 2**63, size=(500, 20), dtype=np.uint64)
    store.upsert(ids, words)
    store.remove(ids[:10])
    asked = rng.choice(ids, 3000)
    columns = rng.integers(0, 20, 3000)
    present, rows, _, _ = store.lookup(asked)
    expected = np.where(present, rows[np.arange(3000), columns], 0)
    assert 0 < (~present).sum() < 3000
    assert store.words_at(asked, columns).tolist() == expected.tolist()
    alive = present
    assert store.words_at(asked[alive], columns[alive], held=True).tolist() == expected[alive].tolist()


def test_a_word_store_growing_by_appends_rewrites_and_removals_holds_what_a_dict_holds() -> None:
    """Adds of new, larger ids go after the stored rows in spare room (no rewrite of the store);
    an update of a held id, a removal, or ids out of order take the general merge; a removal of
    ids never stored changes nothing. After every step the store answers as a dict would."""
    from lookalike.candidates.tables import WordStore

    rng = np.random.default_rng(21)
    store = WordStore(64 * 3)
    model: dict[int, np.ndarray] = {}
    next_id = 0
    rooms = set()
    for _ in range(60):
        kind = rng.choice(["append", "append", "update", "remove", "absent"])
        if kind == "append":
            ids = next_id + np.sort(rng.choice(50, int(rng.integers(1, 20)), replace=False))
            next_id = int(ids[-1]) + 1
        elif kind == "update" and model:
            ids = rng.choice(sorted(model), int(rng.integers(1, 4)))
        elif kind == "remove" and model:
            gone = rng.choice(sorted(model), int(rng.integers(1, 4)), replace=False)
            store.remove(gone)
            for i in gone.tolist():
                model.pop(i)
            continue
        else:
            store.remove([next_id + 1000])  # never stored
            continue
        words = rng.integers(0, 2**63, size=(len(ids), 3), dtype=np.uint64)
        store.upsert(ids, words)
        for i, w in zip(ids.tolist(), words, strict=True):
            model[i] = w
        asked = np.array([*sorted(model), next_id + 5], dtype=np.int64)
        present, found, _, _ = store.lookup(asked)
        assert present.tolist() == [True] * len(model) + [False]
        assert np.array_equal(found[:-1], np.array([model[i] for i in sorted(model)]).reshape(-1, 3))
        assert store.rows()[0].tolist() == sorted(model)
        if store._room is not None:
            rooms.add(id(store._room[1]))
    assert len(model) > 50 and rooms  # the spare room served appends


def test_removing_entries_the_sorted_part_never_held_leaves_it_without_removals() -> None:
    """An index's sync removes each new entry before adding it. An id past every one the sorted
    part holds is not there, so it is not named dead: probes keep skipping common keys unread
    (only possible with no removal pending) and compaction is not brought nearer; the entry is
    found once added, and a held entry's removal still hides it."""
    _, tables, words, fresh = _sorted_part(5, 100)
    tables.remove([150, 151])
    tables.add([150, 151], fresh)
    assert len(tables._dead) == 0
    assert sorted(tables.probe(LAYOUT.keys(fresh))[1].tolist()) == [150, 151]
    tables.remove([151, 42])
    assert tables._dead.tolist() == [42]
    assert tables.probe(LAYOUT.keys(fresh))[1].tolist() == [150]
    assert 42 not in tables.probe(LAYOUT.keys(words[42:43]))[1].tolist()
