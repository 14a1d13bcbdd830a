"""ClickHouse-specific behaviour: binding, both search plans, the bulk path, the 2-shard cluster."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from clickhouse_cluster import Cluster
from hash_sets import random_hashes
from lookalike import Hash
from lookalike.errors import IndexStoreError
from lookalike.index import open_index
from lookalike.index.clickhouse import ClickHouseIndex
from lookalike.index.clickhouse.connection import DriverConnection
from lookalike.index.clickhouse.keys import KeyColumn
from lookalike.index.clickhouse.prefilter import prefilter_pays, probes_per_row
from lookalike.index.clickhouse.schema import prefilter_chunks
from lookalike.index.clickhouse.sql import swar_popcount


@pytest.fixture
def chdb_index(tmp_path: Path) -> Iterator[ClickHouseIndex]:
    index = ClickHouseIndex.open_chdb(f"chdb://{tmp_path / 'ch'}")
    yield index
    index.close()


def _brute(stored: dict[str, Hash], query: Hash, radius: int) -> list[tuple[int, str]]:
    return sorted((query - h, k) for k, h in stored.items() if query - h <= radius)


def test_keys_with_quotes_backslashes_and_newlines_are_bound_not_spliced(chdb_index: ClickHouseIndex) -> None:
    keys = [
        "it's.jpg",
        "back\\slash.jpg",
        "new\nline.jpg",
        "tab\t.jpg",
        "') OR 1=1 --",
        "{q0:UInt64}",
        "ünï.jpg",
    ]
    chdb_index.add((key, {"phash": Hash(i + 1, 64)}) for i, key in enumerate(keys))
    assert sorted(e.key for e in chdb_index.entries()) == sorted(keys)
    for i, key in enumerate(keys):
        entry = chdb_index.get(key)
        assert entry is not None and entry.hashes["phash"] == Hash(i + 1, 64)
    assert chdb_index.remove(["') OR 1=1 --"]) == 1 and len(chdb_index) == len(keys) - 1


def _plans_agree_with_brute_force(index: ClickHouseIndex, nbits: int, radii: tuple[int, ...]) -> None:
    hashes = random_hashes(3000, nbits, seed=nbits, planted=600, max_flips=nbits // 8)
    stored = {f"h{i:05d}": h for i, h in enumerate(hashes)}
    queries = hashes[::97]
    index.add((k, {"phash": h}) for k, h in stored.items())
    for radius in radii:
        index.plan = "prefilter"
        with_prefilter = index.range_search(queries, "phash", radius)
        alone = index.range_search(queries[0], "phash", radius)  # the one-query statement
        index.plan = "scan"
        scanned = index.range_search(queries, "phash", radius)
        assert with_prefilter == scanned and alone == scanned[0]
        for query, found in zip(queries, scanned, strict=True):
            assert [(m.distance, m.key) for m in found] == _brute(stored, query, radius)


@pytest.mark.parametrize("nbits", [64, 42, 256])
def test_prefilter_and_full_scan_give_the_brute_force_answer(tmp_path: Path, nbits: int) -> None:
    with ClickHouseIndex.open_chdb(f"chdb://{tmp_path / 'ch'}") as index:
        assert isinstance(index, ClickHouseIndex)
        _plans_agree_with_brute_force(index, nbits, (0, 1, 3, 5, nbits // 8, nbits // 4))


@pytest.mark.slow
def test_prefilter_and_full_scan_give_the_brute_force_answer_on_the_cluster(
    clickhouse_cluster: Cluster,
) -> None:
    with open_index(clickhouse_cluster.url("plans")) as index:  # 18.16: no indexHint, default storage
        assert isinstance(index, ClickHouseIndex)
        _plans_agree_with_brute_force(index, 64, (0, 3, 8))


def test_auto_plan_scans_small_tables_and_probes_large_ones() -> None:
    assert not prefilter_pays(probes_per_row(64, 3, 13), 2_000, 13)
    assert prefilter_pays(probes_per_row(64, 3, 13), 1_000_000, 13)
    assert prefilter_pays(probes_per_row(64, 10, 13), 10_000_000, 13)
    assert not prefilter_pays(probes_per_row(64, 16, 13), 10_000_000, 13)


def test_prefilter_reads_a_small_fraction_of_the_table(chdb_index: ClickHouseIndex) -> None:
    rng = np.random.default_rng(3)
    words = rng.integers(0, 2**64, size=(200_000, 1), dtype=np.uint64)
    chdb_index.add_words([f"k{i}" for i in range(len(words))], "phash", words, 64)
    query = Hash(int(words[123, 0]) ^ 0b101, 64)
    found = chdb_index.range_search(query, "phash", 3)
    assert [m.key for m in found] == ["k123"]
    # 4 probes (13-bit chunks) read 4 granules of m_* (256 rows each) and one of h_* (8192 rows)
    assert chdb_index.connection.last_rows_read < 16_384 < len(words) // 10


def test_bulk_words_then_updates_keep_other_hashes_and_hide_old_versions(chdb_index: ClickHouseIndex) -> None:
    words = np.arange(1, 1001, dtype=np.uint64).reshape(-1, 1) << np.uint64(20)
    keys = [f"k{i}" for i in range(1000)]
    assert chdb_index.add_words(keys, "phash", words, 64).added == 1000
    chdb_index.add([("k5", {"dhash": Hash(7, 64)})])
    report = chdb_index.add_words(["k5", "new"], "phash", np.array([[1], [2]], dtype=np.uint64), 64)
    assert (report.added, report.updated) == (1, 1)
    entry = chdb_index.get("k5")
    assert entry is not None and set(entry.hashes) == {"phash", "dhash"}
    assert entry.hashes["phash"] == Hash(1, 64)
    old = Hash(int(words[5, 0]), 64)
    assert chdb_index.range_search(old, "phash", 0) == []
    nearest = chdb_index.search(old, "phash", 3)  # stale rows must not crowd out live ones
    assert len(nearest) == 3 and "k5" not in {m.key for m in nearest}


def test_bulk_keys_as_list_numpy_or_arrow_unsorted_with_repeats_last_write_wins(
    chdb_index: ClickHouseIndex,
) -> None:
    rng = np.random.default_rng(5)
    stored: dict[str, Hash] = {}
    for prefix, wrap in (
        ("list", lambda keys: keys),
        ("numpy", np.array),
        ("arrow", lambda keys: pa.array(keys, type=pa.large_string())),
    ):
        keys = [f"{prefix}/{i:04d}.jpg" for i in range(300)] + [f"{prefix}/ünï {i}.jpg" for i in range(20)]
        keys = [keys[i] for i in rng.permutation(len(keys))]
        keys += keys[:10]  # repeated keys: the later hash wins
        words = rng.integers(0, 2**64, size=(len(keys), 1), dtype=np.uint64)
        report = chdb_index.add_words(wrap(keys), "phash", words, 64)
        assert report.added == 320
        stored.update({key: Hash(int(row[0]), 64) for key, row in zip(keys, words, strict=True)})
    in_order = sorted(f"sorted/{i}" for i in range(100))  # proven unique by order: no dict pass
    words = rng.integers(0, 2**64, size=(100, 1), dtype=np.uint64)
    assert chdb_index.add_words(in_order, "phash", words, 64).added == 100
    stored.update({key: Hash(int(row[0]), 64) for key, row in zip(in_order, words, strict=True)})
    assert len(chdb_index) == len(stored)
    for key in ("list/ünï 3.jpg", "numpy/0007.jpg", "arrow/ünï 19.jpg", keys[0], "sorted/42"):
        entry = chdb_index.get(key)
        assert entry is not None and entry.hashes["phash"] == stored[key]
    query = next(iter(stored.values()))
    found = chdb_index.range_search(query, "phash", 20)
    assert [(m.distance, m.key) for m in found] == _brute(stored, query, 20)


@pytest.mark.parametrize(
    "keys",
    [["a", ""], ["a", None], ["a", 3], np.array(["a", ""]), pa.array([1, 2]), pa.array(["a", None])],
    ids=["empty", "none", "int", "numpy-empty", "arrow-ints", "arrow-null"],
)
def test_bulk_keys_must_be_non_empty_strings(chdb_index: ClickHouseIndex, keys: object) -> None:
    with pytest.raises(IndexStoreError, match="key"):
        chdb_index.add_words(keys, "phash", np.ones((2, 1), dtype=np.uint64), 64)
    assert len(chdb_index) == 0


@pytest.mark.parametrize("as_arrow", [False, True], ids=["list", "arrow"])
def test_key_column_orders_dedupes_and_looks_up_alike_as_list_or_arrow(as_arrow: bool) -> None:
    values = ["b", "a", "c", "a"]
    column = KeyColumn(pa.array(values) if as_arrow else values)
    assert not column.strictly_increasing()
    assert column.last_occurrences().tolist() == [0, 3, 2]
    assert column.bounds(ordered=False) == ("a", "c")
    assert column.positions_in(["z", "a"]).tolist() == [-1, 1, -1, 1]
    assert column.positions_in(pa.array(["c", "b"])).tolist() == [1, -1, 0, -1]
    ordered = column.take(np.array([3, 0, 2]))
    assert ordered.to_list() == ["a", "b", "c"] and ordered.strictly_increasing()
    assert ordered.bounds(ordered=True) == ("a", "c")


def test_an_index_made_with_16_bit_chunks_keeps_its_pre_filter(tmp_path: Path) -> None:
    url = f"chdb://{tmp_path / 'ch'}"
    hashes = random_hashes(3000, 64, seed=13, planted=500, max_flips=8)
    stored = {f"h{i:04d}": h for i, h in enumerate(hashes)}
    with ClickHouseIndex.open_chdb(url, chunk_bits=16) as first:  # the first layout: m_*, 4 chunks
        first.add((k, {"phash": h}) for k, h in list(stored.items())[:2000])
    with ClickHouseIndex.open_chdb(url) as index:
        assert isinstance(index, ClickHouseIndex)
        assert index.prefilter_bits("phash") == 16
        index.add((k, {"phash": h}) for k, h in list(stored.items())[2000:])  # fed by the old view
        index.add([("dhash-only", {"dhash": Hash(5, 64)})])
        assert index.prefilter_bits("dhash") == 13  # a new algorithm gets the new layout
        for radius in (0, 3, 8, 12):
            for query, found in zip(
                hashes[::151], index.range_search(hashes[::151], "phash", radius), strict=True
            ):
                assert [(m.distance, m.key) for m in found] == _brute(stored, query, radius)


def _row_counts(index: ClickHouseIndex) -> dict[str, int]:
    tables = index.tables
    names = {
        "entries": tables.entries(),
        "superseded": tables.superseded(),
        "h": tables.hashes("phash"),
        "m": tables.prefilter("phash", index.prefilter_bits("phash"), True),
    }
    return {
        name: int(index.connection.query(f"SELECT count() AS n FROM {table}").values("n")[0])
        for name, table in names.items()
    }


def test_compaction_drops_stale_rows_from_every_table_and_empties_superseded(
    chdb_index: ClickHouseIndex,
) -> None:
    chdb_index.compact_fraction = None  # only the explicit compact() below
    hashes = random_hashes(130, 64, seed=8)
    chdb_index.add((f"k{i}", {"phash": h}) for i, h in enumerate(hashes[:100]))
    chdb_index.add((f"k{i}", {"phash": h}) for i, h in enumerate(hashes[100:]))  # 30 re-hashed
    assert chdb_index.remove([f"k{i}" for i in range(90, 100)]) == 10
    chunks = len(prefilter_chunks(64, chdb_index.prefilter_bits("phash")))  # m rows per hash
    stale = _row_counts(chdb_index)
    assert stale == {"entries": 100 + 30 + 10, "superseded": 40, "h": 130, "m": chunks * 130}
    assert chdb_index.compact() == 40
    assert _row_counts(chdb_index) == {"entries": 90, "superseded": 0, "h": 90, "m": chunks * 90}
    assert chdb_index.range_search(hashes[0], "phash", 0) == []  # k0's old hash
    assert [m.key for m in chdb_index.range_search(hashes[100], "phash", 0)] == ["k0"]


def test_writes_compact_once_replaced_rows_pass_the_threshold(tmp_path: Path) -> None:
    url = f"chdb://{tmp_path / 'ch'}"
    with ClickHouseIndex.open_chdb(url, compact_fraction=0.5, compact_min_rows=1) as index:
        assert isinstance(index, ClickHouseIndex)
        hashes = random_hashes(40, 64, seed=9)
        index.add((f"k{i}", {"phash": h}) for i, h in enumerate(hashes[:20]))
        index.add((f"k{i}", {"phash": h}) for i, h in enumerate(hashes[20:29]))  # 9 of 29 rows: kept
        assert _row_counts(index)["superseded"] == 9
        index.add((f"k{i}", {"phash": h}) for i, h in enumerate(hashes[29:40]))  # 20 of 40: compacted
        assert _row_counts(index) == {"entries": 20, "superseded": 0, "h": 20, "m": 5 * 20}
        assert [m.key for m in index.range_search(hashes[39], "phash", 0)] == ["k10"]


def test_swar_popcount_counts_bits_like_numpy(chdb_index: ClickHouseIndex) -> None:
    values = [0, 1, 2**64 - 1, 0x8000000000000001, 0x5555555555555555, 12345678901234567890]
    binder = chdb_index.connection.binder()
    array = binder.array("v", "UInt64", values)
    result = chdb_index.connection.query(f"SELECT arrayMap(x -> {swar_popcount('x')}, {array}) AS n", binder)
    assert result.values("n")[0] == [bin(v).count("1") for v in values]


# ----- the 2-shard cluster -------------------------------------------------------------------------
@pytest.mark.slow
def test_cluster_spreads_rows_over_both_shards_and_answers_with_the_union(
    clickhouse_cluster: Cluster,
) -> None:
    hashes = random_hashes(400, 64, seed=11)
    with open_index(clickhouse_cluster.url("spread")) as index:
        assert isinstance(index, ClickHouseIndex)
        index.add((f"k{i}", {"phash": h}) for i, h in enumerate(hashes))
        connection = index.connection
        assert isinstance(connection, DriverConnection)
        counts = []
        for host, port in connection.cluster_hosts("lookalike_test"):
            shard = connection.on_host(host, port, database="spread")
            counts.append(shard.query("SELECT count() AS n FROM entries_local").values("n")[0])
            shard.close()
        assert len(counts) == 2 and min(counts) > 50 and sum(counts) == 400
        found = index.range_search(hashes, "phash", 0)
        assert [m[0].key for m in found] == [f"k{i}" for i in range(400)]


@pytest.mark.slow
def test_a_stopped_shard_is_an_error_not_a_partial_answer(tmp_path: Path) -> None:
    cluster = Cluster.start(tmp_path)
    try:
        hashes = random_hashes(100, 64, seed=12)
        with open_index(cluster.url("down")) as index:
            index.add((f"k{i}", {"phash": h}) for i, h in enumerate(hashes))
            assert len(index.range_search(hashes[0], "phash", 64)) == 100
            cluster.servers[1].stop()
            with pytest.raises(IndexStoreError, match=r"127\.0\.0\.1"):
                index.range_search(hashes[0], "phash", 64)
            with pytest.raises(IndexStoreError):
                index.search(hashes[:3], "phash", 5)
            with pytest.raises(IndexStoreError):
                len(index)
            with pytest.raises(IndexStoreError):
                index.add((f"more{i}", {"phash": h}) for i, h in enumerate(hashes))
    finally:
        cluster.stop()


def _active_parts(index: ClickHouseIndex) -> dict[str, int]:
    result = index.connection.query(
        "SELECT table, count() AS n FROM system.parts WHERE active AND database = 'lookalike' GROUP BY table"
    )
    return {str(t): int(n) for t, n in zip(result.values("table"), result.values("n"), strict=True)}


def test_compact_merges_the_parts_a_bulk_load_left_and_keeps_every_answer(
    chdb_index: ClickHouseIndex,
) -> None:
    """Each insert into a family's hash tables adds a part to its key table, and a match looks
    its keys up in every part: compact leaves each key and hash table in one part, answers equal."""
    chdb_index.compact_fraction = None
    names = ["phash_eq", "phash_eq_trimmed", "phash_eq_trimmed_smooth", "phash_eq_crops", "phash:16"]
    hashes = random_hashes(600, 256, seed=12, planted=150, max_flips=40)
    words = np.stack([h.words() for h in hashes])
    keys = [f"k{i:04d}" for i in range(len(hashes))]
    for start in range(0, len(keys), 200):  # three batches of five algorithms
        for name in names:
            chdb_index.add_words(keys[start : start + 200], name, words[start : start + 200], 256)

    def groups() -> list[list[str]]:
        return sorted(
            sorted(m.key for m in group.members) for group in chdb_index.duplicates(matcher="near-duplicate")
        )

    before = groups()
    assert len(before) > 50  # the planted copies group with their originals
    searched = {t: n for t, n in _active_parts(chdb_index).items() if t.startswith(("k", "h_"))}
    assert max(searched.values()) > 1
    assert chdb_index.compact() == 0  # nothing was replaced or removed
    after = _active_parts(chdb_index)
    assert {t: after[t] for t in searched} == dict.fromkeys(searched, 1)
    assert groups() == before
