"""ClickHouse-specific behaviour: binding, both search plans, the bulk path, the 2-shard cluster."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from clickhouse_cluster import Cluster
from hash_sets import random_hashes
from lookalike import Hash
from lookalike.errors import IndexStoreError
from lookalike.index import open_index
from lookalike.index.clickhouse import ClickHouseIndex
from lookalike.index.clickhouse.connection import DriverConnection
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


@pytest.mark.parametrize("nbits", [64, 42, 256])
def test_prefilter_and_full_scan_give_the_brute_force_answer(tmp_path: Path, nbits: int) -> None:
    hashes = random_hashes(3000, nbits, seed=nbits, planted=600, max_flips=nbits // 8)
    stored = {f"h{i:05d}": h for i, h in enumerate(hashes)}
    queries = hashes[::97]
    with ClickHouseIndex.open_chdb(f"chdb://{tmp_path / 'ch'}") as index:
        assert isinstance(index, ClickHouseIndex)
        index.add((k, {"phash": h}) for k, h in stored.items())
        for radius in (0, 1, 3, 5, nbits // 8, nbits // 4):
            index.prefilter = True
            with_prefilter = index.range_search(queries, "phash", radius)
            index.prefilter = False
            scanned = index.range_search(queries, "phash", radius)
            assert with_prefilter == scanned
            for query, found in zip(queries, scanned, strict=True):
                assert [(m.distance, m.key) for m in found] == _brute(stored, query, radius)


def test_prefilter_reads_a_small_fraction_of_the_table(chdb_index: ClickHouseIndex) -> None:
    rng = np.random.default_rng(3)
    words = rng.integers(0, 2**64, size=(200_000, 1), dtype=np.uint64)
    chdb_index.add_words([f"k{i}" for i in range(len(words))], "phash", words, 64)
    query = Hash(int(words[123, 0]) ^ 0b101, 64)
    found = chdb_index.range_search(query, "phash", 3)
    assert [m.key for m in found] == ["k123"]
    # 4 probes read 4 granules of m_* (1024 rows each) and one granule of h_* (8192 rows)
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
