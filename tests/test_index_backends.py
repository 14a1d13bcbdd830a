"""One specification for every Index backend: add `"clickhouse"` (or `"chdb"`) to BACKENDS and a
factory to `make_index`, and the same tests run against it unchanged."""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import lookalike
from hash_sets import flipped, photo_hashes, random_hashes, variant_answers
from lookalike import Hash
from lookalike.candidates.stored_variants import StoredVariants
from lookalike.errors import IndexStoreError, InvalidHashError, MissingVariantsError
from lookalike.index import Index, IndexItem, Match, open_index
from lookalike.index.base import FROM_API, FROM_FILE
from lookalike.index.clickhouse import ClickHouseIndex
from lookalike.index.sqlite import SQLiteIndex

# the 2-shard cluster of Debian's clickhouse-server 18.16 (started once per session: slow)
BACKENDS = ["sqlite", "chdb", pytest.param("clickhouse-cluster", marks=pytest.mark.slow)]


def make_index(backend: str, folder: Path, request: pytest.FixtureRequest) -> Index:
    if backend == "sqlite":
        return open_index(f"sqlite:///{folder / 'index.db'}")
    if backend == "chdb":
        return open_index(f"chdb://{folder / 'chdb'}")
    if backend == "clickhouse-cluster":
        cluster = request.getfixturevalue("clickhouse_cluster")
        database = "t_" + hashlib.blake2b(str(folder).encode(), digest_size=6).hexdigest()
        return open_index(cluster.url(database))
    raise AssertionError(f"no factory for backend {backend!r}")


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def index(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Index]:
    opened = make_index(backend, tmp_path, request)
    yield opened
    opened.close()


@pytest.fixture
def reopen(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Callable[[], Index]:
    return lambda: make_index(backend, tmp_path, request)


def _reference(stored: dict[str, Hash], query: Hash, radius: int) -> list[tuple[int, str]]:
    return sorted((query - value, key) for key, value in stored.items() if query - value <= radius)


def _pairs(matches: list[Match]) -> list[tuple[int, str]]:
    return [(m.distance, m.key) for m in matches]


# ----- storing -------------------------------------------------------------------------------------
def test_add_then_get_restores_hashes_quality_and_file_facts(index: Index) -> None:
    pdq_like = Hash(int("f" * 63 + "1", 16), 256, quality=87)
    item = IndexItem(
        "cat.jpg",
        {
            "phash": Hash.from_hex("c3e0f0f8c4c0e0f0"),
            "pdq": pdq_like,
            "colorhash": Hash.from_hex("07e01000000", 42),
        },
        sha256="ab" * 32,
        byte_size=1234,
        width=640,
        height=480,
        mtime=1700000000.5,
        metadata={"source": "upload"},
    )
    report = index.add([item])
    assert (report.added, report.updated, report.unchanged) == (1, 0, 0)
    entry = index.get("cat.jpg")
    assert entry is not None
    assert entry.hashes == item.hashes
    assert entry.hashes["pdq"].quality == 87
    assert (entry.sha256, entry.byte_size, entry.width, entry.height, entry.mtime) == (
        "ab" * 32,
        1234,
        640,
        480,
        1700000000.5,
    )
    assert entry.metadata == {"source": "upload"}
    assert entry.pixels == 640 * 480
    assert "cat.jpg" in index and "dog.jpg" not in index and len(index) == 1


def test_hash_list_pairs_can_be_added_without_images(index: Index) -> None:
    hashes = random_hashes(50, 64, seed=1)
    report = index.add((f"list-{i}", {"pHash": h}) for i, h in enumerate(hashes))  # names are normalised
    assert report.added == 50
    assert index.range_search(hashes[7], "phash", 0) == [Match(0, "list-7")]


@pytest.mark.parametrize("nbits", [64, 256])
def test_add_words_stores_hash_arrays_like_add_does(index: Index, nbits: int) -> None:
    hashes = random_hashes(300, nbits, seed=nbits)
    hashes[7] = Hash(0, nbits)  # flat: flagged
    words = np.array([h.words() for h in hashes], dtype=np.uint64)
    quality = [None] * 300
    quality[8] = 10  # poor: flagged
    index.add([("k0", {"pdq": hashes[5]})])  # an existing key goes through the general path
    report = index.add_words([f"k{i}" for i in range(300)], "pdq", words, nbits, quality)
    assert (report.added, report.updated) == (299, 1)
    entry = index.get("k8")
    assert entry is not None and entry.hashes["pdq"] == hashes[8] and entry.hashes["pdq"].quality == 10
    assert entry.flagged == frozenset({"pdq"})
    assert _pairs(index.range_search(hashes[0], "pdq", 0)) == [(0, "k0")]
    assert index.range_search(hashes[7], "pdq", 0) == []
    assert _pairs(index.range_search(hashes[7], "pdq", 0, include_flagged=True)) == [(0, "k7")]
    with pytest.raises(InvalidHashError):
        index.add_words(["other"], "pdq", np.zeros((1, 2), dtype=np.uint64), 128)


def test_same_bytes_twice_make_one_entry(index: Index) -> None:
    value = {"phash": Hash.from_hex("00ff00ff00ff00ff")}
    index.add([IndexItem("a.jpg", value, sha256="11" * 32)])
    report = index.add([IndexItem("copy-of-a.jpg", value, sha256="11" * 32)])
    assert report.same_bytes == (("copy-of-a.jpg", "a.jpg"),) and report.added == 0
    assert len(index) == 1
    again = index.add([IndexItem("a.jpg", value, sha256="11" * 32)])
    assert (again.added, again.updated, again.unchanged) == (0, 0, 1)


def test_a_changed_file_at_the_same_key_is_updated(index: Index) -> None:
    index.add(
        [
            IndexItem(
                "a.jpg", {"phash": Hash.from_hex("00ff00ff00ff00ff"), "ahash": Hash(5, 64)}, sha256="11" * 32
            )
        ]
    )
    report = index.add(
        [IndexItem("a.jpg", {"phash": Hash.from_hex("ffff00ff00ff00ff")}, sha256="22" * 32, width=9)]
    )
    assert report.updated == 1 and len(index) == 1
    entry = index.get("a.jpg")
    assert entry is not None and entry.sha256 == "22" * 32 and entry.width == 9
    assert set(entry.hashes) == {"phash"}  # the old image's other hashes are gone with it
    assert index.range_search(Hash.from_hex("00ff00ff00ff00ff"), "phash", 0) == []
    assert index.range_search(Hash(5, 64), "ahash", 0) == []
    assert _pairs(index.range_search(Hash.from_hex("ffff00ff00ff00ff"), "phash", 0)) == [(0, "a.jpg")]


def test_remove_deletes_entries_and_their_hashes(index: Index) -> None:
    hashes = random_hashes(20, 64, seed=2)
    index.add((f"k{i}", {"phash": h}) for i, h in enumerate(hashes))
    assert index.remove(["k3", "k4", "missing"]) == 2
    assert index.get("k3") is None and len(index) == 18
    assert index.range_search(hashes[3], "phash", 0) == []


def test_a_hash_length_other_than_the_stored_one_is_refused(index: Index) -> None:
    index.add([("a", {"phash": Hash(1, 64)})])
    with pytest.raises(InvalidHashError):
        index.add([("b", {"phash": Hash(1, 256)})])
    with pytest.raises(InvalidHashError):
        index.range_search(Hash(1, 256), "phash", 3)


def _churned(index: Index) -> tuple[dict[str, Hash], list[Hash]]:
    """200 entries, 60 of them re-hashed and 30 removed (stale rows for compaction); returns the
    live hashes and queries that hit live, replaced and removed hashes."""
    hashes = random_hashes(260, 64, seed=21, planted=40, max_flips=4)
    stored = {f"k{i:03d}": h for i, h in enumerate(hashes[:200])}
    index.add((key, {"phash": h}) for key, h in stored.items())
    updated = {f"k{i:03d}": hashes[200 + i] for i in range(60)}
    index.add((key, {"phash": h}) for key, h in updated.items())
    stored.update(updated)
    removed = [f"k{i:03d}" for i in range(100, 130)]
    assert index.remove(removed) == 30
    for key in removed:
        del stored[key]
    return stored, hashes[:10] + hashes[100:110] + hashes[200:210]


def _answers(index: Index, queries: list[Hash]) -> tuple[object, ...]:
    return (
        len(index),
        sorted(e.key for e in index.entries()),
        index.range_search(queries, "phash", 6),
        index.search(queries, "phash", 5),
    )


def test_compact_keeps_every_answer_and_later_writes_still_work(
    index: Index, reopen: Callable[[], Index]
) -> None:
    stored, queries = _churned(index)
    before = _answers(index, queries)
    assert [_pairs(m) for m in before[2]] == [_reference(stored, q, 6) for q in queries]  # type: ignore[index]
    index.compact()
    assert _answers(index, queries) == before
    assert index.compact() == 0  # nothing left to drop
    index.add([("k000", {"phash": Hash(12345, 64)}), ("fresh", {"phash": Hash(99, 64)})])
    assert index.remove(["k001"]) == 1
    assert _pairs(index.range_search(Hash(12345, 64), "phash", 0)) == [(0, "k000")]
    assert index.range_search(stored["k000"], "phash", 0) == []
    assert index.get("k001") is None and len(index) == len(stored)
    index.close()
    with reopen() as again:
        assert _pairs(again.range_search(Hash(99, 64), "phash", 0)) == [(0, "fresh")]
        assert len(again) == len(stored)


def test_searches_stay_exact_while_compaction_runs(index: Index, reopen: Callable[[], Index]) -> None:
    stored, queries = _churned(index)
    expected = [_reference(stored, q, 6) for q in queries]
    wrong: list[object] = []
    done = threading.Event()

    def read() -> None:
        try:
            with reopen() as reader:
                while not done.is_set():
                    found = [_pairs(m) for m in reader.range_search(queries, "phash", 6)]
                    if found != expected:
                        wrong.append(found)
        except Exception as exc:  # reported by the assertion below
            wrong.append(exc)

    thread = threading.Thread(target=read)
    thread.start()
    try:
        for _ in range(3):  # compactions with stale rows, each followed by more churn
            index.compact()
            index.add((key, {"phash": h}) for key, h in stored.items())  # unchanged: no new rows
            index.add([("churn", {"phash": Hash(7, 64)})])
            index.remove(["churn"])
    finally:
        done.set()
        thread.join()
    assert not wrong


# ----- exact search --------------------------------------------------------------------------------
@pytest.mark.parametrize(("nbits", "max_radius"), [(64, 32), (256, 64)])
def test_range_search_equals_brute_force_on_random_hashes(index: Index, nbits: int, max_radius: int) -> None:
    hashes = random_hashes(2000, nbits, seed=nbits, planted=400, max_flips=max_radius // 3)
    stored = {f"h{i:05d}": h for i, h in enumerate(hashes)}
    index.add((key, {"pdq" if nbits == 256 else "phash": h}) for key, h in stored.items())
    algorithm = "pdq" if nbits == 256 else "phash"
    queries = hashes[::173] + random_hashes(2, nbits, seed=5)
    for radius in range(0, max_radius + 1, 1 if nbits == 64 else 4):
        results = index.range_search(queries, algorithm, radius)
        for query, found in zip(queries, results, strict=True):
            assert _pairs(found) == _reference(stored, query, radius), radius


@pytest.mark.slow
def test_range_and_top_k_equal_brute_force_on_real_photo_hashes(index: Index, photos: list[Path]) -> None:
    hashes = photo_hashes("phash", tuple(photos))
    stored = {f"photo{i:04d}": h for i, h in enumerate(hashes)}
    index.add((key, {"phash": h}) for key, h in stored.items())
    queries = list(hashes[::7])
    for radius in range(33):
        for query, found in zip(queries, index.range_search(queries, "phash", radius), strict=True):
            assert _pairs(found) == _reference(stored, query, radius)
    for query, found in zip(queries, index.search(queries, "phash", 10), strict=True):
        assert _pairs(found) == _reference(stored, query, 64)[:10]


@pytest.mark.parametrize("k", [1, 10, 25])
def test_top_k_equals_brute_force_with_ties_broken_by_key(index: Index, k: int) -> None:
    hashes = random_hashes(1500, 64, seed=k, planted=300, max_flips=5)
    stored = {f"h{i:05d}": h for i, h in enumerate(hashes)}
    stored.update({f"dup{i}": hashes[0] for i in range(3)})  # ties at distance 0
    index.add((key, {"phash": h}) for key, h in stored.items())
    queries = [hashes[0], *hashes[::211]]
    for query, found in zip(queries, index.search(queries, "phash", k), strict=True):
        assert _pairs(found) == _reference(stored, query, 64)[:k]


def test_one_query_gives_a_list_many_give_a_list_of_lists(index: Index) -> None:
    index.add([("a", {"phash": Hash(0b1011, 64)}), ("b", {"phash": Hash(0b0011, 64)})])
    single = index.range_search(Hash(0b0011, 64), "phash", 1)
    assert _pairs(single) == [(0, "b"), (1, "a")]
    many = index.search([Hash(0b0011, 64), Hash(0b1011, 64)], "phash", 1)
    assert [_pairs(m) for m in many] == [[(0, "b")], [(0, "a")]]
    assert index.range_search(Hash(1, 64), "dhash", 5) == []  # an algorithm the index has not seen


def test_flat_and_low_quality_hashes_are_skipped_unless_included(index: Index) -> None:
    index.add(
        [
            ("flat", {"ahash": Hash(0, 64)}),
            ("poor", {"ahash": Hash(1, 64, quality=20)}),
            ("good", {"ahash": Hash(3, 64, quality=90)}),
        ]
    )
    assert _pairs(index.range_search(Hash(1, 64), "ahash", 2)) == [(1, "good")]
    assert _pairs(index.range_search(Hash(1, 64), "ahash", 2, include_flagged=True)) == [
        (0, "poor"),
        (1, "flat"),
        (1, "good"),
    ]
    entry = index.get("flat")
    assert entry is not None and entry.flagged == frozenset({"ahash"})


def test_dihedral_search_finds_rotated_and_flipped_copies(
    index: Index, photos: list[Path], tmp_path: Path
) -> None:
    source = photos[3]
    with Image.open(source) as image:
        rotated = image.convert("RGB").transpose(Image.Transpose.ROTATE_90)
        flipped = image.convert("RGB").transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    rotated.save(tmp_path / "rotated.png")
    flipped.save(tmp_path / "flipped.png")
    index.add_files(
        [tmp_path / "rotated.png", tmp_path / "flipped.png", *photos[10:20]], hashes=["phash"], workers=1
    )
    query = lookalike.hash_file(source, ["phash"], dihedral=True)["phash"]
    assert isinstance(query, Hash)
    plain = {m.key for m in index.range_search(query, "phash", 6)}
    found = index.range_search(query, "phash", 6, dihedral=True)
    keys = {Path(m.key).name for m in found}
    assert {"rotated.png", "flipped.png"} <= keys
    assert not {str(tmp_path / "rotated.png"), str(tmp_path / "flipped.png")} <= plain
    assert all(m.variant != 0 for m in found if Path(m.key).name in {"rotated.png", "flipped.png"})
    with pytest.raises(MissingVariantsError):
        index.range_search(Hash(1, 64), "phash", 3, dihedral=True)


# ----- files and persistence -----------------------------------------------------------------------
def test_add_files_skips_unchanged_files_and_rehashes_changed_ones(
    index: Index, photos: list[Path], tmp_path: Path
) -> None:
    folder = tmp_path / "pics"
    folder.mkdir()
    for path in photos[:6]:
        shutil.copy(path, folder / path.name)
    files = sorted(folder.iterdir())
    first = index.add_files(files, hashes=["phash", "colorhash"], workers=1)
    assert first.added == 6 and not first.failed
    again = index.add_files(files, hashes=["phash"], workers=1)
    assert (again.added, again.updated, again.unchanged) == (0, 0, 6)
    more = index.add_files(files[:2], hashes=["phash", "dhash"], workers=1)  # a hash not stored yet
    assert more.updated == 2
    shutil.copy(photos[20], files[0])  # new bytes at the same path
    os.utime(files[0], (1, 1))
    changed = index.add_files(files, hashes=["phash"], workers=1)
    assert (changed.updated, changed.unchanged) == (1, 5)
    entry = index.get(str(files[0]))
    assert entry is not None and entry.mtime == 1
    assert entry.hashes["phash"] == lookalike.hash_file(photos[20], ["phash"])["phash"]


def test_add_files_hashes_again_when_an_algorithm_is_revised(
    index: Index, photos: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Hashes that an older revision of an algorithm made are made again after an upgrade; the
    others stay unchanged."""
    import dataclasses

    from lookalike.algorithms import registry

    folder = tmp_path / "pics"
    folder.mkdir()
    for path in photos[:3]:
        shutil.copy(path, folder / path.name)
    files = sorted(folder.iterdir())
    hashes = ["phash", "phash_eq_trimmed"]
    assert index.add_files(files, hashes=hashes, workers=1).added == 3
    assert index.add_files(files, hashes=hashes, workers=1).unchanged == 3
    current = registry.get_algorithm("phash_eq_trimmed")
    revised = dataclasses.replace(current, revision=current.revision + 1)
    monkeypatch.setitem(registry._REGISTRY, "phash_eq_trimmed", revised)
    assert index.add_files(files, hashes=hashes, workers=1).updated == 3
    assert index.add_files(files, hashes=hashes, workers=1).unchanged == 3
    assert index.add_files(files, hashes=["phash"], workers=1).unchanged == 3


def test_add_files_hashes_again_when_the_mode_changes(
    index: Index, photos: list[Path], tmp_path: Path
) -> None:
    files = []
    for path in photos[:3]:
        files.append(tmp_path / path.name)
        shutil.copy(path, files[-1])
    assert index.add_files(files, hashes=["phash"], workers=1).added == 3
    assert {state.mode for state in index.file_states([str(f) for f in files]).values()} == {"fast"}
    exact = index.add_files(files, hashes=["phash"], workers=1, mode="exact")
    assert exact.unchanged == 0 and exact.updated == 3
    assert {state.mode for state in index.file_states([str(f) for f in files]).values()} == {"exact"}
    again = index.add_files(files, hashes=["phash"], workers=1, mode="exact")
    assert (again.updated, again.unchanged) == (0, 3)


def test_add_files_reports_bad_files_and_keeps_going(
    index: Index, photos: list[Path], tmp_path: Path
) -> None:
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not an image")
    calls: list[tuple[int, int]] = []
    report = index.add_files(
        [photos[0], broken, tmp_path / "missing.jpg"], workers=1, progress=lambda d, t: calls.append((d, t))
    )
    assert report.added == 1
    assert {Path(path).name for path, _ in report.failed} == {"broken.jpg", "missing.jpg"}
    assert calls[-1] == (3, 3)


def test_entries_record_where_their_key_came_from_and_each_write_replaces_it(
    index: Index, photos: list[Path], tmp_path: Path
) -> None:
    """Only `add_files` makes an entry FROM_FILE; metadata saying otherwise is just metadata, and
    an HTTP write under a file's key takes the file's standing away until the file is indexed again."""
    photo = tmp_path / photos[0].name
    shutil.copy(photos[0], photo)
    assert index.add_files([photo], hashes=["phash"], workers=1).added == 1
    key = str(photo)
    assert index.get(key).origin == FROM_FILE  # type: ignore[union-attr]
    assert index.file_states([key])[key].origin == FROM_FILE
    forged = IndexItem(
        key, {"phash": Hash.from_hex("0f" * 8)}, metadata={"origin": FROM_FILE}, origin=FROM_API
    )
    index.add([forged, IndexItem("/etc/hostname", {"phash": Hash.from_hex("0e" * 8)}, origin=FROM_API)])
    assert index.get(key).origin == FROM_API  # type: ignore[union-attr]
    assert index.get("/etc/hostname").origin == FROM_API  # type: ignore[union-attr]
    index.add([("/etc/passwd", {"phash": Hash.from_hex("0d" * 8)})])
    assert index.get("/etc/passwd").origin is None  # type: ignore[union-attr]
    again = index.add_files([photo], hashes=["phash"], workers=1)  # not skipped: it is no file entry
    assert again.updated == 1 and index.get(key).origin == FROM_FILE  # type: ignore[union-attr]
    assert index.add_files([photo], hashes=["phash"], workers=1).unchanged == 1


def _as_stored_before_origins(index: Index) -> None:
    """Take the `origin` column away, as an index made by a version before it looks."""
    if isinstance(index, SQLiteIndex):
        with sqlite3.connect(index.path) as db:
            db.execute("ALTER TABLE entries DROP COLUMN origin")
            db.execute("UPDATE meta SET value = 1 WHERE name = 'schema_version'")
        return
    assert isinstance(index, ClickHouseIndex)
    tables = index.tables
    names = [tables.entries(True), *([tables.entries()] if tables.cluster else [])]
    connections = [index.connection]
    if tables.cluster:
        connections = [
            index.connection.on_host(host, port)
            for host, port in index.connection.cluster_hosts(tables.cluster)
        ]
    for connection in connections:
        for name in names:
            connection.execute(f"ALTER TABLE {name} DROP COLUMN origin")


def test_an_index_stored_before_origins_opens_with_them_unknown(
    index: Index, reopen: Callable[[], Index], photos: list[Path], tmp_path: Path
) -> None:
    photo = tmp_path / photos[0].name
    shutil.copy(photos[0], photo)
    index.add_files([photo], hashes=["phash"], workers=1)
    stored = index.get(str(photo))
    _as_stored_before_origins(index)
    index.close()
    with reopen() as upgraded:
        entry = upgraded.get(str(photo))
        assert entry is not None and entry.origin is None and entry.hashes == stored.hashes  # type: ignore[union-attr]
        assert upgraded.add_files([photo], hashes=["phash"], workers=1).updated == 1
        assert upgraded.get(str(photo)).origin == FROM_FILE  # type: ignore[union-attr]
    with reopen() as again:
        assert again.get(str(photo)).origin == FROM_FILE  # type: ignore[union-attr]


def test_reopened_index_answers_the_same(index: Index, reopen: Callable[[], Index]) -> None:
    hashes = random_hashes(3000, 64, seed=9, planted=300, max_flips=4)
    index.add((f"h{i}", {"phash": h}) for i, h in enumerate(hashes))
    before = index.range_search(hashes[:50], "phash", 6)
    index.close()
    with reopen() as again:
        assert again.range_search(hashes[:50], "phash", 6) == before
        again.remove(["h0"])
        again.add([("new", {"phash": hashes[0]})])
    with reopen() as third:
        assert _pairs(third.range_search(hashes[0], "phash", 0)) == [(0, "new")]


def test_a_second_handle_sees_writes_made_through_the_first(
    index: Index, reopen: Callable[[], Index]
) -> None:
    hashes = random_hashes(500, 64, seed=4)
    index.add((f"h{i}", {"phash": h}) for i, h in enumerate(hashes[:400]))
    with reopen() as reader:
        assert len(reader.range_search(hashes[450], "phash", 0)) == 0
        index.add((f"h{i}", {"phash": h}) for i, h in enumerate(hashes[400:], start=400))
        index.remove(["h1"])
        assert _pairs(reader.range_search(hashes[450], "phash", 0)) == [(0, "h450")]
        assert reader.range_search(hashes[1], "phash", 0) == []


# ----- grouping and matching -----------------------------------------------------------------------
def _item(key: str, value: int, width: int = 100, size: int = 1000, mtime: float = 0.0) -> IndexItem:
    return IndexItem(
        key,
        {"phash": Hash(value, 64)},
        sha256=key * 8,
        byte_size=size,
        width=width,
        height=width,
        mtime=mtime,
    )


def test_duplicates_groups_components_with_the_best_copy_first(index: Index) -> None:
    base = 0x0F0F_F0F0_3C3C_C3C3
    index.add(
        [
            _item("small", base, width=100),
            _item("large", base ^ 0b1, width=400),
            _item("chain", base ^ 0b111, width=50),  # 3 from small, 2 from large
            _item("far", base ^ 0xFFFF_0000, width=800),
            _item("other1", 0x1234_5678_9ABC_DEF0, size=10, mtime=5),
            _item("other2", 0x1234_5678_9ABC_DEF1, size=10, mtime=3),  # same pixels and size: older wins
        ]
    )
    groups = index.duplicates("phash", 2)
    assert [[m.key for m in g.members] for g in groups] == [["large", "small", "chain"], ["other2", "other1"]]
    assert groups[0].best.key == "large"
    assert groups[0].distances[("large", "small")] == 1


def test_strict_duplicates_keep_every_member_within_r_of_the_centre(index: Index) -> None:
    index.add(
        [_item(f"n{i}", (1 << i) - 1, width=10 + i) for i in range(1, 9)]
    )  # a chain: neighbours differ by 1 bit
    loose = index.duplicates("phash", 1)
    assert len(loose) == 1 and len(loose[0].members) == 8
    strict = index.duplicates("phash", 1, strict=True)
    for group in strict:
        members = {m.key: m.hashes["phash"] for m in group.members}
        centre = max(members, key=lambda k: sum(members[k] - v <= 1 for v in members.values()))
        assert all(members[centre] - value <= 1 for value in members.values())
    assert sum(len(g.members) for g in strict) <= 8 and len(strict) >= 3


def test_a_flagged_hash_vouches_for_no_match_unless_asked(index: Index) -> None:
    # An all-zero colour hash is what every flat picture has: it must not make two pictures match.
    index.add([("flat", {"phash": Hash(0b1, 64), "colorhash": Hash(0, 42)})])
    query = {"phash": Hash(0, 64), "colorhash": Hash(0b1, 42)}
    assert index.match(query, "phash <= 8 and colorhash <= 6") == []
    kept = index.match(query, "phash <= 8 and colorhash <= 6", include_flagged=True)
    assert [(v.key, v.distances["colorhash"]) for v in kept] == [("flat", 1)]


def test_match_combines_thresholds_over_several_hashes(index: Index) -> None:
    index.add(
        [
            ("same", {"phash": Hash(0b1, 64), "colorhash": Hash(0b110, 42)}),
            ("other-colours", {"phash": Hash(0b11, 64), "colorhash": Hash((1 << 20) - 1, 42)}),
        ]
    )
    query = {"phash": Hash(0, 64), "colorhash": Hash(0b111, 42)}
    verdicts = index.match(query, "phash <= 8 and colorhash <= 6")
    assert [(v.key, v.distances["phash"], v.distances["colorhash"]) for v in verdicts] == [("same", 1, 1)]
    either = index.match(query, "phash <= 8 or colorhash <= 6")
    assert [v.key for v in either] == ["same", "other-colours"]
    # A preset by name: near-duplicate reads equalised pHash (among others); one stored copy is close.
    index.add(
        [("eq-close", {"phash_eq": Hash(0b111, 256)}), ("eq-far", {"phash_eq": Hash((1 << 200) - 1, 256)})]
    )
    assert [v.key for v in index.match({"phash_eq": Hash(0, 256)}, "near-duplicate")] == ["eq-close"]


# ----- bulk add (`add_words`): idempotent, and the same index as `add` ----------------------------
def _word_rows(hashes: list[Hash]) -> np.ndarray:
    return np.array([h.words() for h in hashes], dtype=np.uint64)


def _stored(index: Index, keys: list[str]) -> dict[str, dict[str, tuple[str, int | None]]]:
    return {
        key: {name: (str(h), h.quality) for name, h in entry.hashes.items()}
        for key, entry in index.get_many(keys).items()
    }


def _range_answers(
    index: Index, queries: dict[str, list[Hash]], radius: int
) -> dict[str, list[list[tuple[int, str]]]]:
    return {
        name: [_pairs(found) for found in index.range_search(hashes, name, radius, include_flagged=True)]
        for name, hashes in queries.items()
    }


def test_bulk_add_twice_changes_nothing_and_matches_add(index: Index, tmp_path: Path) -> None:
    keys = [f"k{i:03d}" for i in range(120)]
    columns = {
        "phash": random_hashes(120, 64, seed=3, planted=20, max_flips=3),
        "pdq": random_hashes(120, 256, seed=4, planted=20, max_flips=9),
    }
    quality = [None if i % 7 == 0 else 20 + i % 80 for i in range(120)]  # some poor: flagged
    for name, hashes in columns.items():  # the second algorithm goes to keys the first stored
        report = index.add_words(keys, name, _word_rows(hashes), hashes[0].nbits, quality)
        assert (report.added, report.updated) == ((120, 0) if name == "phash" else (0, 120))
    fingerprint = index.fingerprint()
    for name, hashes in columns.items():
        again = index.add_words(keys, name, _word_rows(hashes), hashes[0].nbits, quality)
        assert (again.added, again.updated, again.unchanged) == (0, 0, 120)
    assert index.fingerprint() == fingerprint and len(index) == 120

    # the same items through `add` (SQLite: one chDB data path per process)
    reference = open_index(f"sqlite:///{tmp_path / 'reference.db'}")
    reference.add(
        (
            key,
            {name: hashes[i].with_quality(quality[i]) for name, hashes in columns.items()},
        )
        for i, key in enumerate(keys)
    )
    assert _stored(index, keys) == _stored(reference, keys)
    queries = {name: hashes[::9] for name, hashes in columns.items()}
    assert _range_answers(index, queries, 10) == _range_answers(reference, queries, 10)
    reference.close()


# keys that JSON escapes or SQLite's JSON functions must decode (the SQLite bulk path passes a
# batch's keys as one JSON array); qualities at the ends of their range and none
AWKWARD_KEYS = ["plain", "caf\u00e9 \U0001f600.jpg", 'quote"back\\slash', "tab\tnew\nline", "\u2028sep"]
AWKWARD_QUALITY = [None, 0, 1, 99, 100]


@pytest.mark.parametrize("nbits", [64, 128, 256])
def test_bulk_add_stores_what_add_stores_for_awkward_keys(index: Index, tmp_path: Path, nbits: int) -> None:
    quality = AWKWARD_QUALITY
    hashes = random_hashes(len(AWKWARD_KEYS), nbits, seed=nbits)
    hashes[1] = Hash((1 << nbits) - 1, nbits)  # all ones: flagged
    report = index.add_words(AWKWARD_KEYS, "pdq", _word_rows(hashes), nbits, quality)
    assert report.added == len(AWKWARD_KEYS)
    reference = open_index(f"sqlite:///{tmp_path / 'reference.db'}")
    reference.add(
        (key, {"pdq": h.with_quality(q)}) for key, h, q in zip(AWKWARD_KEYS, hashes, quality, strict=True)
    )
    assert _stored(index, AWKWARD_KEYS) == _stored(reference, AWKWARD_KEYS)
    assert {k: e.flagged for k, e in index.get_many(AWKWARD_KEYS).items()} == {
        k: e.flagged for k, e in reference.get_many(AWKWARD_KEYS).items()
    }
    queries = {"pdq": hashes}
    assert _range_answers(index, queries, nbits // 4) == _range_answers(reference, queries, nbits // 4)
    again = index.add_words(AWKWARD_KEYS, "pdq", _word_rows(hashes), nbits, quality)
    assert (again.added, again.updated, again.unchanged) == (0, 0, len(AWKWARD_KEYS))
    reference.close()


def test_bulk_add_updates_changed_hashes_and_adds_new_keys_in_one_batch(index: Index) -> None:
    old = random_hashes(50, 256, seed=5)
    index.add_words([f"k{i}" for i in range(50)], "pdq", _word_rows(old), 256)
    new = random_hashes(20, 256, seed=6)
    changed = {f"k{i}": new[i] for i in range(10)}  # 10 stored keys get another hash
    changed.update({f"n{i}": new[10 + i] for i in range(10)})  # 10 keys are new
    changed.update({f"k{i}": old[i] for i in range(10, 15)})  # 5 stored keys the same hash
    report = index.add_words(list(changed), "pdq", _word_rows(list(changed.values())), 256)
    assert (report.added, report.updated, report.unchanged) == (10, 10, 5)
    assert index.range_search(old[3], "pdq", 0) == []
    assert _pairs(index.range_search(new[3], "pdq", 0)) == [(0, "k3")]
    assert _pairs(index.range_search(new[12], "pdq", 0)) == [(0, "n2")]
    assert _pairs(index.range_search(old[12], "pdq", 0)) == [(0, "k12")]
    assert len(index) == 60
    assert {key: str(e.hashes["pdq"]) for key, e in index.get_many(list(changed)).items()} == {
        key: str(h) for key, h in changed.items()
    }


def test_bulk_add_of_a_new_algorithm_keeps_stored_facts_variants_and_quality_flags(index: Index) -> None:
    hashes = random_hashes(12, 64, seed=7)
    turned = random_hashes(12 * 3, 64, seed=8)
    items = [
        IndexItem(
            f"k{i}",
            {"phash": hashes[i].with_variants([hashes[i], *turned[3 * i : 3 * i + 3]])},
            sha256=f"{i:064x}",
            width=640,
            height=480,
            metadata={"n": i},
        )
        for i in range(12)
    ]
    index.add(items)
    pdq = random_hashes(12, 256, seed=9)
    pdq[4] = Hash(0, 256)  # flat: flagged
    quality = [90] * 12
    quality[5] = 10  # poor: flagged
    report = index.add_words([f"k{i}" for i in range(12)], "pdq", _word_rows(pdq), 256, quality)
    assert (report.added, report.updated) == (0, 12)
    entry = index.get("k5")
    assert entry is not None and entry.sha256 == f"{5:064x}" and (entry.width, entry.height) == (640, 480)
    assert dict(entry.metadata) == {"n": 5} and entry.flagged == frozenset({"pdq"})
    assert entry.hashes["phash"] == hashes[5] and entry.hashes["pdq"] == pdq[5]
    assert index.range_search(pdq[4], "pdq", 0) == [] and index.range_search(pdq[5], "pdq", 0) == []
    assert _pairs(index.range_search(pdq[6], "pdq", 0)) == [(0, "k6")]
    batch = next(index.stored_batches(["phash"], 100))
    stored_variants = batch.hashes["phash"].words
    assert stored_variants.shape[1] == 4  # each hash and its 3 stored variants survive
    assert sorted(int(w) for w in stored_variants[:, 1:, 0].ravel()) == sorted(int(h) for h in turned)


def test_bulk_add_of_a_file_entry_replaces_its_origin_as_add_does(index: Index) -> None:
    value = Hash.from_hex("00ff00ff00ff0f0f")
    index.add([IndexItem("a.jpg", {"phash": value}, origin=FROM_FILE)])
    report = index.add_words(["a.jpg"], "phash", _word_rows([value]), 64)
    entry = index.get("a.jpg")
    assert report.updated == 1 and entry is not None and entry.origin is None


def test_bulk_add_rejects_an_empty_key_and_keeps_what_is_stored(index: Index) -> None:
    hashes = random_hashes(3, 64, seed=10)
    index.add_words(["a", "b"], "phash", _word_rows(hashes[:2]), 64)
    with pytest.raises(IndexStoreError, match="non-empty string"):
        index.add_words(["c", "", "a"], "phash", _word_rows(hashes), 64)
    assert sorted(index.get_many(["a", "b", "c"])) == ["a", "b"]
    assert index.get("a").hashes["phash"] == hashes[0]  # type: ignore[union-attr]


# ----- stored variants (the pictures inside stored composites) -------------------------------------
REGIONS = "phash_eq_regions"


def _regions_item(key: str, own: Hash, regions: list[Hash]) -> IndexItem:
    return IndexItem(key, {REGIONS: own.with_variants([own, *regions])})


def test_stored_variants_follow_adds_replacements_and_removals(index: Index) -> None:
    rng = np.random.default_rng(3)
    owns = random_hashes(40, 256, seed=4)
    pool = random_hashes(120, 256, seed=5)
    regions = {f"k{i}": pool[3 * i : 3 * i + int(rng.integers(0, 4))] for i in range(30)}
    index.add([_regions_item(key, owns[i], regions[key]) for i, key in enumerate(regions)])
    before = index.stored_variants(REGIONS)
    assert before is not None and len(before) == sum(len(r) for r in regions.values())
    # new regions for two entries, none for one, two removed, and two new entries
    regions["k1"], regions["k2"], regions["k3"] = pool[90:92], pool[92:93], []
    regions["n1"], regions["n2"] = pool[93:95], pool[95:96]
    index.add(
        [
            _regions_item(key, owns[30 + i], regions[key])
            for i, key in enumerate(["k1", "k2", "k3", "n1", "n2"])
        ]
    )
    index.remove(["k4", "k5"])
    del regions["k4"], regions["k5"]
    after = index.stored_variants(REGIONS)
    ids = index.ids_by_key(list(regions))
    listed = [(ids[key], region) for key, held in regions.items() for region in held]
    anew = StoredVariants(
        before.layout,
        np.array([entry for entry, _ in listed], dtype=np.int64),
        np.array([region.words() for _, region in listed], dtype=np.uint64),
    )
    query = flipped(np.array([region.words() for region in pool], dtype=np.uint64), rng, 5)
    assert after is not None and len(after) == len(anew)
    for exact in (True, False):
        assert variant_answers(after, query, exact=exact) == variant_answers(anew, query, exact=exact)
    gone = {ids.get("k4"), ids.get("k5")}
    assert not {owner for _, owner in variant_answers(after, query, exact=True)} & gone
    assert after is before  # brought up to date in place: only the changed entries were read
