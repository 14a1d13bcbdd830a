"""SQLite specifics: URLs, WAL concurrency across processes, and surviving kill -9 mid-add."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hash_sets import random_hashes
from lookalike import Hash
from lookalike.errors import IndexStoreError, InvalidHashError
from lookalike.index import IndexItem, open_index
from lookalike.index.sqlite import SCHEMA_VERSION, SQLiteIndex, sqlite_path

SRC = str(Path(__file__).resolve().parents[1] / "src")


def _python(script: str, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def test_urls_and_bare_paths_name_the_same_file(tmp_path: Path) -> None:
    assert sqlite_path("sqlite:///rel/x.db") == "rel/x.db"
    assert sqlite_path("sqlite:////abs/x.db") == "/abs/x.db"
    assert sqlite_path(None) == "lookalike.db"
    with open_index(tmp_path / "a.db") as index:
        assert isinstance(index, SQLiteIndex)
    assert (tmp_path / "a.db").exists()


def test_a_file_that_is_not_an_index_is_reported_by_name(tmp_path: Path) -> None:
    bogus = tmp_path / "notes.db"
    bogus.write_bytes(b"plain text, not a database" * 100)
    with pytest.raises(IndexStoreError, match=r"notes\.db"):
        open_index(bogus)


def test_an_index_in_a_missing_folder_is_refused_with_the_url_rule(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    absolute = tmp_path / "made" / "i.db"
    # Three slashes make a path relative to the current folder, as in SQLAlchemy: the usual slip.
    with pytest.raises(IndexStoreError, match=r"no folder .*made.*sqlite:////abs/x\.db is absolute"):
        open_index(f"sqlite://{absolute}")
    with pytest.raises(IndexStoreError, match=r"no folder") as refused:
        open_index(f"sqlite:///{absolute}")
    assert "relative" not in str(refused.value)
    assert list(tmp_path.iterdir()) == []  # nothing was created on the way


def test_database_is_in_wal_mode_with_a_schema_version(tmp_path: Path) -> None:
    open_index(tmp_path / "w.db").close()
    db = sqlite3.connect(tmp_path / "w.db")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    version = db.execute("SELECT value FROM meta WHERE name = 'schema_version'").fetchone()[0]
    assert version == SCHEMA_VERSION == 5  # 2: origin; 3: variants; 4: variants.rev; 5: a table per hash


def test_snapshot_makes_reopening_skip_the_catalog_scan(tmp_path: Path) -> None:
    hashes = random_hashes(2000, 64, seed=1)
    with open_index(tmp_path / "s.db") as index:
        index.add((f"h{i}", {"phash": h}) for i, h in enumerate(hashes))
        index.range_search(hashes[0], "phash", 3)
    assert (tmp_path / "s.db.search" / "phash.npz").exists()
    reopened = SQLiteIndex.open(tmp_path / "s.db")
    assert [m.key for m in reopened.range_search(hashes[5], "phash", 0)] == ["h5"]
    assert reopened._stores["phash"].from_snapshot
    reopened.close()


@pytest.mark.slow
def test_readers_keep_reading_while_another_process_writes(tmp_path: Path) -> None:
    db = tmp_path / "busy.db"
    hashes = random_hashes(4000, 64, seed=2)
    with open_index(db) as index:
        index.add((f"h{i}", {"phash": h}) for i, h in enumerate(hashes[:1000]))
    words = np.array([int(h) for h in hashes], dtype=np.uint64)
    np.save(tmp_path / "words.npy", words)
    writer = _python(
        """
        import sys, numpy as np
        from lookalike import Hash
        from lookalike.index import open_index
        words = np.load(sys.argv[2])
        with open_index(sys.argv[1]) as index:
            for start in range(1000, 4000, 100):
                index.add((f"h{i}", {"phash": Hash(int(words[i]), 64)}) for i in range(start, start + 100))
        print("done", flush=True)
        """,
        str(db),
        str(tmp_path / "words.npy"),
    )
    reader = _python(
        """
        import sys, time
        from lookalike import Hash
        from lookalike.index import open_index
        seen = []
        with open_index(sys.argv[1]) as index:
            for _ in range(200):
                seen.append(len(index))
                time.sleep(0.005)
        print(min(seen), max(seen), flush=True)
        """,
        str(db),
    )
    with open_index(db) as index:
        counts = []
        while writer.poll() is None:
            counts.append(len(index))
            assert [m.key for m in index.range_search(hashes[0], "phash", 0)] == ["h0"]
        assert counts == sorted(counts)  # never a torn or shrinking view
    assert writer.wait(60) == 0, writer.stderr.read() if writer.stderr else ""
    out, err = reader.communicate(timeout=60)
    assert reader.returncode == 0, err
    low, high = map(int, out.split())
    assert 1000 <= low <= high <= 4000
    with open_index(db) as index:
        assert len(index) == 4000
        assert [m.key for m in index.range_search(hashes[3999], "phash", 0)] == ["h3999"]


def _make_images(folder: Path, count: int) -> list[Path]:
    rng = np.random.default_rng(0)
    folder.mkdir()
    paths = []
    for number in range(count):
        pixels = rng.integers(0, 256, size=(12, 12, 3), dtype=np.uint8)
        path = folder / f"img{number:05d}.png"
        Image.fromarray(pixels).save(path)
        paths.append(path)
    return paths


@pytest.mark.slow
def test_kill_minus_9_mid_add_leaves_an_index_that_opens_and_completes(tmp_path: Path) -> None:
    paths = _make_images(tmp_path / "images", 1500)
    db = tmp_path / "crash.db"
    adder = _python(
        """
        import sys
        from pathlib import Path
        from lookalike.index import open_index
        paths = sorted(Path(sys.argv[2]).iterdir())
        index = open_index(sys.argv[1])
        index.add_files(paths, hashes=["phash", "ahash"], workers=1,
                        progress=lambda done, total: print(done, flush=True))
        """,
        str(db),
        str(tmp_path / "images"),
    )
    assert adder.stdout is not None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = adder.stdout.readline()
        if not line or int(line) >= 700:  # a few batches committed, the next one in flight
            break
    os.kill(adder.pid, signal.SIGKILL)
    adder.wait(30)
    assert adder.returncode == -signal.SIGKILL

    check = sqlite3.connect(db)
    assert check.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    stored = check.execute("SELECT count(*) FROM entries").fetchone()[0]
    check.close()
    assert 0 < stored < 1500

    with open_index(db) as index:
        report = index.add_files(paths, hashes=["phash", "ahash"], workers=2)
        assert report.unchanged == stored and report.added == 1500 - stored and not report.failed
        assert len(index) == 1500
        keys = [entry.key for entry in index.entries()]
        assert len(keys) == len(set(keys)) == 1500
        shas = {entry.sha256 for entry in index.entries()}
        assert len(shas) == 1500
        sample = index.get(str(paths[1234]))
        assert sample is not None
        found = index.range_search(sample.hashes["phash"], "phash", 0)
        assert str(paths[1234]) in {m.key for m in found}


def test_one_index_can_be_shared_between_threads(tmp_path: Path) -> None:
    hashes = random_hashes(2000, 64, seed=8)
    errors: list[BaseException] = []
    with open_index(tmp_path / "threads.db") as index:
        index.add((f"h{i}", {"phash": h}) for i, h in enumerate(hashes[:500]))

        def read() -> None:
            try:
                for _ in range(40):
                    assert [m.key for m in index.range_search(hashes[0], "phash", 0)] == ["h0"]
                    assert len(index) >= 500
            except BaseException as exc:  # reported to the main thread below
                errors.append(exc)

        readers = [threading.Thread(target=read) for _ in range(3)]
        for thread in readers:
            thread.start()
        for start in range(500, 2000, 100):
            index.add((f"h{i}", {"phash": hashes[i]}) for i in range(start, start + 100))
        for thread in readers:
            thread.join()
        assert not errors, errors[0]
        assert len(index) == 2000


def _hash_rows(path: Path) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as db:
        return db.execute(
            "SELECT e.key, h.algorithm, h.value, h.words, h.quality, typeof(h.quality), h.flagged"
            " FROM hashes AS h JOIN entries AS e ON e.id = h.entry_id ORDER BY e.key, h.algorithm"
        ).fetchall()


@pytest.mark.parametrize("nbits", [64, 256])
def test_bulk_add_writes_the_rows_add_writes(tmp_path: Path, nbits: int) -> None:
    """`add_words` builds its rows in SQL from packed arrays (`sqlite_bulk`); `add` binds each
    value: the stored rows are the same, byte for byte, for qualities that pack and that do not."""
    keys = [f"k{i:03d}" for i in range(300)]
    hashes = random_hashes(300, nbits, seed=nbits)
    quality = [None if i % 5 == 0 else (i * 7919) % 1000 for i in range(300)]
    quality[200], quality[201] = -4, 1 << 20  # outside what packs: the second half binds each value
    words = np.array([h.words() for h in hashes], np.uint64)
    bulk, single = tmp_path / "bulk.db", tmp_path / "single.db"
    with open_index(f"sqlite:///{bulk}") as index:
        for algorithm in ("pdq", "pdq2"):  # new entries, then keys already stored
            index.add_words(keys[:150], algorithm, words[:150], nbits, quality[:150])
            index.add_words(keys[150:], algorithm, words[150:], nbits, quality[150:])
    with open_index(f"sqlite:///{single}") as index:
        index.add(
            (k, {"pdq": h.with_quality(q), "pdq2": h.with_quality(q)})
            for k, h, q in zip(keys, hashes, quality, strict=True)
        )
    assert _hash_rows(bulk) == _hash_rows(single)
    assert len(_hash_rows(bulk)) == 600


def test_bulk_add_checkpoints_the_wal_itself_and_restores_the_setting(tmp_path: Path) -> None:
    """`add_words` turns automatic checkpoints off while it writes and copies the WAL into the
    database itself; afterwards (also after a refused batch) the connection checkpoints as before."""
    index = SQLiteIndex(str(tmp_path / "index.db"))
    words = np.arange(1, 5001, dtype=np.uint64).reshape(-1, 1)
    index.add_words([f"k{i}" for i in range(5000)], "phash", words, 64)
    assert index._db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 1000
    busy, frames, copied = index._db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    assert (busy, copied) == (0, frames)  # every frame already copied
    with pytest.raises(InvalidHashError):
        index.add_words(["k1"], "phash", np.zeros((1, 4), dtype=np.uint64), 256)
    assert index._db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 1000
    assert len(index) == 5000
    index.close()


def test_bulk_add_trusts_the_keys_it_wrote_only_until_another_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The next hash of a bulk load skips looking its keys up (`RecentKeyIds`); a write by any
    other handle in between (here a removal) makes it look them up again, so no hash row is
    written for an entry that is gone."""
    import lookalike.index.sqlite_bulk as bulk

    path = tmp_path / "index.db"
    keys = [f"k{i:03d}" for i in range(100)]
    words = np.arange(1, 101, dtype=np.uint64).reshape(-1, 1)
    writer = SQLiteIndex(str(path))
    writer.add_words(keys, "phash", words, 64)
    lookups = []
    looked_up = bulk.ids_of_keys
    monkeypatch.setattr(
        bulk, "ids_of_keys", lambda db, keys: lookups.append(len(keys)) or looked_up(db, keys)
    )
    assert writer.add_words(keys, "ahash", words, 64).updated == 100
    assert lookups == []  # the keys the last transaction wrote
    other = SQLiteIndex(str(path))
    assert other.remove(["k005"]) == 1
    other.close()
    report = writer.add_words(keys, "colorhash", words, 64)
    assert lookups == [100] and (report.added, report.updated) == (1, 99)
    entry = writer.get("k005")
    assert entry is not None and set(entry.hashes) == {"colorhash"}
    orphans = "SELECT count(*) FROM hashes WHERE entry_id NOT IN (SELECT id FROM entries)"
    assert writer._db.execute(orphans).fetchone()[0] == 0
    writer.close()


def test_remove_takes_an_entrys_stored_variants_with_it(tmp_path: Path) -> None:
    hashes = random_hashes(6, 64, seed=21)
    with open_index(tmp_path / "v.db") as index:
        index.add(
            [
                IndexItem(f"k{i}", {"phash": h.with_variants([h, hashes[(i + 1) % 6]])})
                for i, h in enumerate(hashes)
            ]
        )
        gone = index.ids_by_key(["k2"])["k2"]
        assert index.remove(["k2"]) == 1
    db = sqlite3.connect(tmp_path / "v.db")
    left = [row[0] for row in db.execute("SELECT entry_id FROM variants")]
    assert len(left) == 5 and gone not in left


def test_an_index_of_schema_3_gains_variant_revisions_and_loses_orphans(tmp_path: Path) -> None:
    hashes = random_hashes(4, 64, seed=22)
    with open_index(tmp_path / "old.db") as index:
        index.add(
            [IndexItem(f"k{i}", {"phash": h.with_variants([h, hashes[3 - i]])}) for i, h in enumerate(hashes)]
        )
    with sqlite3.connect(tmp_path / "old.db") as db:  # as schema 3 stored it, with `remove`'s leftovers
        db.execute("DROP INDEX variants_by_rev")
        db.execute("ALTER TABLE variants DROP COLUMN rev")
        db.execute("INSERT INTO variants (entry_id, algorithm, words) VALUES (999, 'phash', x'00')")
        db.execute("UPDATE meta SET value = 3 WHERE name = 'schema_version'")
    with open_index(tmp_path / "old.db") as index:
        assert len(index) == 4
        batch = next(index.stored_batches(["phash"], 10))
        assert batch.hashes["phash"].words.shape[1] == 2  # the stored variants survive
    db = sqlite3.connect(tmp_path / "old.db")
    assert db.execute("SELECT value FROM meta WHERE name = 'schema_version'").fetchone()[0] == SCHEMA_VERSION
    assert sorted(row[0] for row in db.execute("SELECT DISTINCT rev FROM variants")) == [0]
    assert db.execute("SELECT count(*) FROM variants WHERE entry_id = 999").fetchone()[0] == 0


def _as_schema_4(path: Path) -> None:
    """Rewrite an index as lookalike stored it before 2026-12-08: one `hashes` table keyed by
    (algorithm, entry), indexed by (algorithm, rev) and by entry."""
    with sqlite3.connect(path) as db:
        tables = db.execute("SELECT name, hash_table FROM algorithms").fetchall()
        db.execute(
            "CREATE TABLE hashes_4 (algorithm TEXT NOT NULL, entry_id INTEGER NOT NULL, value INTEGER,"
            " words BLOB, quality INTEGER, flagged INTEGER NOT NULL DEFAULT 0, rev INTEGER NOT NULL,"
            " PRIMARY KEY (algorithm, entry_id)) WITHOUT ROWID"
        )
        db.execute(
            "INSERT INTO hashes_4 SELECT algorithm, entry_id, value, words, quality, flagged, rev FROM hashes"
        )
        db.execute("DROP VIEW hashes")
        for _, table in tables:
            db.execute(f"DROP TABLE {table}")
        db.execute("DROP TABLE hash_appends")
        db.execute("ALTER TABLE hashes_4 RENAME TO hashes")
        db.execute("CREATE INDEX hashes_by_rev ON hashes(algorithm, rev)")
        db.execute("CREATE INDEX hashes_by_entry ON hashes(entry_id)")
        db.execute("ALTER TABLE algorithms DROP COLUMN hash_table")
        db.execute("UPDATE meta SET value = 4 WHERE name = 'schema_version'")


def test_an_index_of_schema_4_moves_its_hashes_into_a_table_per_algorithm(tmp_path: Path) -> None:
    hashes = random_hashes(6, 256, seed=23)
    path = tmp_path / "old.db"
    with open_index(path) as index:
        index.add([IndexItem(f"k{i}", {"pdq": h, "phash_eq": hashes[5 - i]}) for i, h in enumerate(hashes)])
        assert index.range_search(hashes[0], "pdq", 0)[0].key == "k0"
        index.persist_search(force=True)  # a snapshot made before the move must still catch up
        before = _hash_rows(path)
    _as_schema_4(path)
    with open_index(path) as index:
        assert _hash_rows(path) == before
        stored = index.get("k2")
        assert stored is not None and stored.hashes["phash_eq"] == hashes[3]
        assert index.file_states(["k1"])["k1"].algorithms == frozenset({"pdq", "phash_eq"})
        assert index.remove(["k2"]) == 1
        assert len(index) == 5 and index.get("k2") is None
        index.add([IndexItem("k9", {"pdq": hashes[2]})])
        assert [m.key for m in index.range_search(hashes[2], "pdq", 0)] == ["k9"]
    db = sqlite3.connect(path)
    names = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type IN ('index', 'table')")}
    assert "hashes_by_entry" not in names and "hashes_by_rev" not in names
    assert db.execute("SELECT value FROM meta WHERE name = 'schema_version'").fetchone()[0] == SCHEMA_VERSION
    assert db.execute("SELECT count(*) FROM hashes").fetchone()[0] == 11  # k2's two rows went with it
    tables = dict(db.execute("SELECT name, hash_table FROM algorithms").fetchall())
    assert sorted(tables) == ["pdq", "phash_eq"] and len(set(tables.values())) == 2
    for table in tables.values():
        plan = " ".join(
            str(row) for row in db.execute(f"EXPLAIN QUERY PLAN SELECT value FROM {table} WHERE entry_id = 3")
        )
        assert "PRIMARY KEY" in plan


def _stored_pairs(index: SQLiteIndex, algorithm: str, queries: list[Hash]) -> list[list[str]]:
    """What the search in memory finds at distance 0 for each query, keys sorted."""
    return [sorted(m.key for m in index.range_search(q, algorithm, 0)) for q in queries]


def test_a_store_in_memory_sees_every_bulk_append_replacement_and_removal(tmp_path: Path) -> None:
    """Bulk appends are stamped but not indexed by generation (`sqlite_hash_tables`): a reader
    that loaded its store before them, or a snapshot made before them, still finds exactly what
    a fresh open finds, after appends, replacements of appended rows, removals of the table's
    top entries and appends above them again."""
    path = tmp_path / "s.db"
    hashes = random_hashes(400, 64, seed=31)
    words = np.array([h.words() for h in hashes], np.uint64)
    writer, reader = SQLiteIndex(str(path)), SQLiteIndex(str(path))
    writer.add_words([f"k{i:03d}" for i in range(100)], "phash", words[:100], 64)
    queries = list(hashes)
    assert _stored_pairs(reader, "phash", queries[:3]) == [["k000"], ["k001"], ["k002"]]
    reader.persist_search(force=True)
    writer.add_words([f"k{i:03d}" for i in range(100, 200)], "phash", words[100:200], 64)  # appended
    table = writer._hash_table("phash")
    unindexed = writer._db.execute(f"SELECT count(*) FROM {table} WHERE appended = 1").fetchone()[0]
    assert unindexed == 200  # neither batch went into the index by generation
    writer.add_words([f"k{i:03d}" for i in range(150, 160)], "phash", words[300:310], 64)  # replaced
    writer.add([IndexItem("k010", {"phash": hashes[310]})])  # a small write of an appended row
    assert writer.remove([f"k{i:03d}" for i in range(190, 200)]) == 10  # the table's top entries
    writer.add_words([f"k{i:03d}" for i in range(200, 250)], "phash", words[200:250], 64)
    writer.add_words(["k005"], "colorhash", words[:1], 64)  # another algorithm: its own table
    fresh = SQLiteIndex(str(path), snapshots=False)
    from_snapshot = SQLiteIndex(str(path))
    expected = _stored_pairs(fresh, "phash", queries)
    assert expected[150] == [] and expected[300] == ["k150"] and expected[310] == ["k010"]
    assert expected[195] == [] and expected[249] == ["k249"] and expected[10] == []
    assert _stored_pairs(reader, "phash", queries) == expected
    assert _stored_pairs(from_snapshot, "phash", queries) == expected
    for index in (writer, reader, fresh, from_snapshot):
        index.close()
